// debugger.jsx - the replay debugger: a recording's replay driven through gdb's machine
// interface by glimpse serve (/api/recordings/ID/debug, /api/debug/SID): the source around
// the current line, the stack, the locals, threads and breakpoints; continue, step, next,
// finish and their reverse forms (buttons and keys), a breakpoint at FILE:LINE; and the
// commands to attach gdb, Delve or VS Code instead, beside it. URL: /recordings/ID/debug?at=
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, query, setQuery, Link, shortFile } from './api.jsx';
import { Failure, Loading } from './widgets.jsx';

// [command, label, key] - a shifted key runs the reverse form.
const MOVES = [
	['continue', 'Continue', 'c'],
	['next', 'Next', 'n'],
	['step', 'Step', 's'],
	['finish', 'Finish', 'f'],
];

function moment(at) {
	if (/^\d+$/.test(at)) return { event: Number(at) };
	return at ? { at } : {};
}

function stopText(st) {
	const s = st.stop;
	if (!s) return 'Stopped.';
	const where = st.frame ? ` in ${st.frame.func || '??'}${st.frame.file ? ` at ${shortFile(st.frame.file)}:${st.frame.line}` : ''}` : '';
	const why = {
		'breakpoint-hit': `breakpoint ${s.breakpoint || ''} hit`,
		'end-stepping-range': 'step done',
		'function-finished': 'function finished',
		'no-history': 'no more history in this direction (the start or end of the recording)',
		'signal-received': s.signal === '0' ? 'at the moment asked for' : `signal ${s.signal}`,
		'exited-normally': 'the program exited',
		exited: `the program exited (code ${s.exit_code})`,
	}[s.reason] || s.reason || 'stopped';
	return `Stopped: ${why}${where}${s.thread ? `, thread ${s.thread}` : ''}.`;
}

function Source({ st, onBreak, busy }) {
	const cur = useRef(null);
	const src = st.source;
	// The current line in the middle of the source pane (only the pane scrolls).
	useEffect(() => {
		const row = cur.current;
		const pane = row && row.closest('.dbg-src');
		if (!pane) return;
		pane.scrollTop += row.getBoundingClientRect().top - pane.getBoundingClientRect().top - pane.clientHeight / 2;
	}, [st]);
	if (!src) return <p class="muted">No source for this frame.</p>;
	if (src.unavailable) return <p class="muted">Source of <code>{src.path}</code> unavailable: {src.unavailable}.</p>;
	const marks = new Set(st.breakpoints.filter((b) => b.fullname === src.path).map((b) => b.line));
	return (
		<div class="src" role="region" aria-label={`Source of ${shortFile(src.path)}`} tabIndex={0}>
			<div class="src-path mono muted">{src.path}</div>
			<table class="src-lines mono">
				<tbody>
					{src.lines.map((text, i) => {
						const no = src.first + i;
						const here = no === src.line;
						return (
							<tr key={no} class={here ? 'cur' : ''} ref={here ? cur : null} aria-current={here ? 'true' : undefined} data-line={no}>
								<td class="gutter">
									<button type="button" class={`bp${marks.has(no) ? ' on' : ''}`} disabled={busy} aria-label={`${marks.has(no) ? 'Breakpoint at' : 'Set a breakpoint at'} line ${no}`} onClick={() => onBreak(`${shortFile(src.path).split('/').pop()}:${no}`)}>
										{marks.has(no) ? '●' : ''}
									</button>
								</td>
								<td class="ln">{no}</td>
								<td class="code">{here ? <span class="here">{text || ' '}</span> : text || ' '}</td>
							</tr>
						);
					})}
				</tbody>
			</table>
		</div>
	);
}

export function Debugger({ id }) {
	const [at, setAt] = useState(query('at'));
	const [st, setSt] = useState(null);
	const [err, setErr] = useState(null);
	const [busy, setBusy] = useState('Opening the replay');
	const [loc, setLoc] = useState('');
	const [gor, setGor] = useState('');
	const sid = st && st.session;

	const open = async (where) => {
		setBusy('Opening the replay');
		setErr(null);
		try {
			setSt(await api(`/api/recordings/${id}/debug`, { method: 'POST', body: moment(where) }));
		} catch (e) {
			setErr(e);
		} finally {
			setBusy(null);
		}
	};
	useEffect(() => {
		open(at);
	}, [id]);

	// Runs the commands one after the other, stopping at the first refused. Whether one
	// runs is kept in a ref too: a key may arrive before the effects of the last render.
	const running = useRef(false);
	const run = async (...cmds) => {
		if (!sid || running.current) return;
		running.current = true;
		setErr(null);
		try {
			for (const cmd of cmds) {
				setBusy(cmd);
				setSt(await api(`/api/debug/${sid}/cmd`, { method: 'POST', body: { cmd } }));
			}
		} catch (e) {
			setErr(e);
			if (e.status === 404 || e.status === 410 || e.status === 502 || e.status === 504) setSt(null);
		} finally {
			running.current = false;
			setBusy(null);
		}
	};
	const latest = useRef(run);
	latest.current = run;
	const close = async () => {
		if (!sid) return;
		try {
			await api(`/api/debug/${sid}`, { method: 'DELETE' });
		} catch (e) {
			setErr(e);
		}
		setSt(null);
	};

	// Keys: c n s f run forward, C N S F (shift) backwards; b goes to the breakpoint box.
	// One listener, calling the latest run (its session) through a ref.
	useEffect(() => {
		const key = (e) => {
			const t = e.target;
			if (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
			const m = MOVES.find((x) => x[2] === e.key.toLowerCase());
			if (m) {
				e.preventDefault();
				latest.current(e.shiftKey ? `reverse-${m[0]}` : m[0]);
			} else if (e.key === 'b') {
				e.preventDefault();
				document.getElementById('dbg-break').focus();
			}
		};
		addEventListener('keydown', key);
		return () => removeEventListener('keydown', key);
	}, []);

	const locals = (st && st.locals) || [];
	return (
		<section class="debugger">
			<div class="title-row">
				<h1>Replay debugger · recording #{id}</h1>
				<Link href={`/recordings/${id}/replay${at ? `?at=${encodeURIComponent(at)}` : ''}`}>Replay server and attach commands</Link>
			</div>
			<form
				class="row"
				onSubmit={(e) => {
					e.preventDefault();
					setQuery('at', at);
					open(at);
				}}
			>
				<label for="dbg-at">Moment</label>
				<input id="dbg-at" value={at} placeholder="snapshot:ID, event:ID or an rr event number" onInput={(e) => setAt(e.currentTarget.value)} />
				<button type="submit" disabled={!!busy}>Go to this moment</button>
				{sid ? <button type="button" onClick={close} disabled={!!busy}>Close session</button> : null}
			</form>
			<div class="dbg-bar" role="toolbar" aria-label="Run the replay">
				{MOVES.map(([cmd, label, k]) => (
					<span class="actions" key={cmd}>
						<button type="button" class="primary" disabled={!sid || !!busy} aria-keyshortcuts={k} title={`${label} (${k})`} onClick={() => run(cmd)}>
							{label}
						</button>
						<button type="button" disabled={!sid || !!busy} aria-keyshortcuts={`Shift+${k}`} title={`Reverse ${label.toLowerCase()} (Shift+${k})`} onClick={() => run(`reverse-${cmd}`)}>
							◀ Reverse {label.toLowerCase()}
						</button>
					</span>
				))}
			</div>
			<div class="row">
				<form
					class="row"
					onSubmit={async (e) => {
						e.preventDefault();
						await run(`break ${loc.trim()}`);
					}}
				>
					<label for="dbg-break">Breakpoint at</label>
					<input id="dbg-break" class="mono" value={loc} placeholder="main.go:42" aria-keyshortcuts="b" onInput={(e) => setLoc(e.currentTarget.value)} />
					<button type="submit" disabled={!sid || !!busy || !/^[\w.+\-/@]+:\d+$/.test(loc.trim())}>Set breakpoint</button>
					<button type="button" disabled={!sid || !!busy || !/^[\w.+\-/@]+:\d+$/.test(loc.trim())} onClick={() => run(`break ${loc.trim()}`, 'continue')}>
						Run to it
					</button>
				</form>
				<form
					class="row"
					onSubmit={(e) => {
						e.preventDefault();
						run(`goroutine ${gor.trim()}`);
					}}
				>
					<label for="dbg-goroutine">Goroutine</label>
					<input id="dbg-goroutine" size={8} value={gor} inputMode="numeric" onInput={(e) => setGor(e.currentTarget.value)} />
					<button type="submit" disabled={!sid || !!busy || !/^\d+$/.test(gor.trim())}>Show its frames</button>
				</form>
			</div>
			<p role="status" aria-live="polite" class="dbg-status" data-testid="dbg-status">
				{busy ? `${busy}…` : st ? stopText(st) : ''}
			</p>
			{err ? <Failure error={err} what="The debugger" /> : null}
			{!st && busy ? <Loading what="the replay (rr seeks to the moment, gdb reads the program)" /> : null}
			{st ? (
				<div class="dbg-grid">
					<div class="pane dbg-src">
						<h2>
							Source{st.frame ? <span class="muted small"> · {st.frame.func} · line <span data-testid="dbg-line">{st.frame.line}</span></span> : null}
						</h2>
						<Source st={st} busy={!!busy} onBreak={(l) => run(`break ${l}`)} />
					</div>
					<div class="dbg-side">
						<div class="pane">
							<h2>Locals</h2>
							{locals.length ? (
								<table class="grid locals" data-testid="dbg-locals">
									<thead>
										<tr><th scope="col">Name</th><th scope="col">Value</th></tr>
									</thead>
									<tbody>
										{locals.map((v) => (
											<tr key={v.name} data-name={v.name}>
												<td class="mono">{v.name}{v.arg ? <span class="badge">arg</span> : null}</td>
												<td class="mono val">{v.value}{v.truncated ? <span class="badge warn">truncated</span> : null}</td>
											</tr>
										))}
									</tbody>
								</table>
							) : (
								<p class="muted">{st.locals_error || 'None in this frame.'}</p>
							)}
							{st.locals_truncated ? <p class="muted small">The first {st.limits.locals} shown.</p> : null}
						</div>
						<div class="pane">
							<h2>Stack</h2>
							<ol class="dbg-stack" start={0}>
								{st.stack.map((f) => (
									<li key={f.level}>
										<button type="button" class={`link${st.frame && st.frame.level === f.level ? ' sel' : ''}`} aria-current={st.frame && st.frame.level === f.level ? 'true' : undefined} disabled={!!busy} onClick={() => run(`frame ${f.level}`)}>
											<span class="mono">{f.func || f.addr}</span>
										</button>{' '}
										<span class="muted small">{f.file ? `${shortFile(f.file)}:${f.line}` : ''}</span>
									</li>
								))}
							</ol>
							{st.stack_truncated ? <p class="muted small">The first {st.limits.stack} frames shown.</p> : null}
						</div>
						<div class="pane">
							<h2>Threads</h2>
							<ul class="dbg-threads">
								{st.threads.map((t) => (
									<li key={t.id}>
										<button type="button" class="link" disabled={!!busy || t.id === st.current_thread} aria-current={t.id === st.current_thread ? 'true' : undefined} onClick={() => run(`thread ${t.id}`)}>
											{t.id === st.current_thread ? '▶ ' : ''}thread {t.id}
										</button>{' '}
										<span class="muted small mono">{t.func} {t.file ? `${shortFile(t.file)}:${t.line}` : ''}</span>
									</li>
								))}
							</ul>
						</div>
						<div class="pane">
							<h2>Breakpoints</h2>
							{st.breakpoints.length ? (
								<ul class="dbg-breaks" data-testid="dbg-breaks">
									{st.breakpoints.map((b) => (
										<li key={b.number}>
											<span class="mono">{b.file ? `${shortFile(b.file)}:${b.line}` : b.location}</span>{' '}
											<span class="muted small">{b.func} · {b.hits} hit{b.hits === 1 ? '' : 's'}</span>{' '}
											<button type="button" class="link" disabled={!!busy} onClick={() => run(`delete ${b.number}`)} aria-label={`Delete breakpoint ${b.number}`}>
												delete
											</button>
										</li>
									))}
								</ul>
							) : (
								<p class="muted">None. Set one above, or with a line's gutter in the source.</p>
							)}
						</div>
					</div>
				</div>
			) : null}
			{st && st.result && st.result.console ? (
				<details class="dbg-console">
					<summary>gdb said</summary>
					<pre class="mono">{st.result.console}</pre>
				</details>
			) : null}
			{st ? (
				<div class="notice">
					<h2>Attach a debugger of your own instead</h2>
					<p class="small muted">
						rr's replay server at <code>{st.gdbserver}</code> takes one debugger at a time: close this session first (it also closes after {st.limits.idle_s} s unused).
					</p>
					<dl class="dbg-attach">
						{Object.entries(st.commands).map(([k, v]) => (
							<>
								<dt>{k}</dt>
								<dd><pre class="mono">{v}</pre></dd>
							</>
						))}
					</dl>
				</div>
			) : null}
			<p class="muted small">Keys: c continue · n next · s step · f finish · Shift with each: backwards · b breakpoint box.</p>
		</section>
	);
}
