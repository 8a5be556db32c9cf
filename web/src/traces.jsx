// traces.jsx - tracepoint sessions: start one (function picker completing from the
// binary's functions, where filter, duration), watch its events live over
// Server-Sent Events in a virtualized table with a latency histogram per function,
// and stop it.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, useApi, Link, navigate, query, fmtTime, fmtDur } from './api.jsx';
import { VirtualList, Chart, Loading, Failure } from './widgets.jsx';

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function Traces() {
	const list = useApi('/api/traces?limit=100');
	return (
		<section>
			<h1>Traces</h1>
			<p>
				<Link class="button" href="/traces/new">
					New trace…
				</Link>
			</p>
			{list.loading ? <Loading what="traces" /> : list.error ? <Failure error={list.error} /> : (
				<table class="grid">
					<thead>
						<tr><th>Trace</th><th>PID</th><th>Functions</th><th>State</th><th>Events</th><th>Started</th></tr>
					</thead>
					<tbody>
						{list.data.traces.map((t) => (
							<tr key={t.trace_id}>
								<td><Link href={`/traces/${t.trace_id}`}>#{t.trace_id}</Link></td>
								<td>{t.pid}</td>
								<td class="mono">{(t.probes || []).map((p) => p.func).join(', ') || t.regex}</td>
								<td>{t.state}{t.end_reason ? <span class="muted"> ({t.end_reason})</span> : null}</td>
								<td class="num">{t.events}</td>
								<td>{fmtTime(t.started)}</td>
							</tr>
						))}
						{!list.data.traces.length ? <tr><td colSpan={6} class="muted">No traces yet.</td></tr> : null}
					</tbody>
				</table>
			)}
		</section>
	);
}

export function NewTrace() {
	const [pid, setPid] = useState(query('pid'));
	const [fn, setFn] = useState('');
	const [where, setWhere] = useState('');
	const [dur, setDur] = useState('60');
	const [names, setNames] = useState([]);
	const [note, setNote] = useState('');
	const [err, setErr] = useState(null);
	const [busy, setBusy] = useState(false);
	useEffect(() => {
		if (!pid || !/^\d+$/.test(pid)) return undefined;
		const t = setTimeout(() => {
			api(`/api/processes/${pid}/functions?limit=40&match=${encodeURIComponent(fn)}`).then(
				(r) => {
					setNames(r.functions);
					setNote(`${r.total} function${r.total === 1 ? '' : 's'} match`);
				},
				(e) => {
					setNames([]);
					setNote(e.status === 404 ? `no completion: ${e.message}` : e.message);
				},
			);
		}, 150);
		return () => clearTimeout(t);
	}, [pid, fn]);
	const start = async (e) => {
		e.preventDefault();
		setBusy(true);
		setErr(null);
		try {
			const regex = names.includes(fn) ? `^${escapeRe(fn)}$` : fn;
			const body = { pid: Number(pid), regex, duration_s: Number(dur) || 60 };
			if (where.trim()) body.where = where.trim();
			const r = await api('/api/traces', { method: 'POST', body });
			navigate(`/traces/${r.trace_id}`);
		} catch (x) {
			setErr(x.message);
			setBusy(false);
		}
	};
	return (
		<section>
			<h1>New trace</h1>
			<form class="stack-form" onSubmit={start}>
				<label>
					Process ID <input name="pid" required inputMode="numeric" value={pid} onInput={(e) => setPid(e.currentTarget.value)} />
				</label>
				<label>
					Function (name or regular expression){' '}
					<input name="func" required list="funcs" autoComplete="off" class="wide" value={fn} onInput={(e) => setFn(e.currentTarget.value)} />
				</label>
				<datalist id="funcs">
					{names.map((n) => (
						<option key={n} value={n} />
					))}
				</datalist>
				<span class="muted small" aria-live="polite">{note}</span>
				<label>
					Where (optional filter, e.g. <code>userID == 42</code>){' '}
					<input name="where" class="wide" value={where} onInput={(e) => setWhere(e.currentTarget.value)} />
				</label>
				<label>
					Duration (s) <input name="duration" type="number" min="1" value={dur} onInput={(e) => setDur(e.currentTarget.value)} />
				</label>
				<div>
					<button type="submit" disabled={busy || !pid || !fn}>
						{busy ? 'Attaching…' : 'Start trace'}
					</button>
				</div>
				{err ? <div class="error" role="alert">{err}</div> : null}
			</form>
		</section>
	);
}

const short = (v) => {
	if (v == null) return '';
	const s = typeof v === 'string' ? v : JSON.stringify(v);
	return s.length > 200 ? s.slice(0, 200) + '…' : s;
};

// Latency histogram: log2 buckets of the returns' durations for one function.
function Histogram({ events, fn }) {
	const data = useMemo(() => {
		const b = new Map();
		for (const e of events) if (e.kind === 'return' && e.duration_ns != null && (!fn || e.func === fn)) {
			const k = Math.max(0, Math.floor(Math.log2(Math.max(1, e.duration_ns))));
			b.set(k, (b.get(k) || 0) + 1);
		}
		if (!b.size) return null;
		const ks = [...b.keys()];
		const lo = Math.min(...ks);
		const hi = Math.max(...ks);
		const x = [];
		const y = [];
		for (let k = lo; k <= hi; k++) {
			x.push(k);
			y.push(b.get(k) || 0);
		}
		return { x, y };
	}, [events.length, fn]);
	if (!data) return <p class="muted">No returns yet: the latency histogram appears with the first.</p>;
	return (
		<Chart
			x={data.x}
			series={[{ label: 'calls', values: data.y }]}
			bars
			height={180}
			title={`Latency of ${fn || 'all functions'}: calls by duration (powers of two)`}
			xLabel="duration"
			xFmt={(v) => fmtDur(Math.round(2 ** v))}
		/>
	);
}

export function Trace({ id }) {
	const info = useApi(`/api/traces/${id}`);
	const [events, setEvents] = useState([]);
	const [live, setLive] = useState('connecting');
	const [sel, setSel] = useState(-1);
	const [fn, setFn] = useState('');
	const [err, setErr] = useState(null);
	const pending = useRef([]);
	useEffect(() => {
		const es = new EventSource(`/api/traces/${id}/stream`);
		const take = (m) => {
			try {
				pending.current.push(JSON.parse(m.data));
			} catch {
				/* a malformed event is skipped */
			}
		};
		es.addEventListener('call', take);
		es.addEventListener('return', take);
		es.addEventListener('message', take);
		es.addEventListener('open', () => setLive('live'));
		es.addEventListener('end', () => {
			setLive('ended');
			es.close();
			info.reload();
		});
		es.onerror = () => setLive((s) => (s === 'ended' ? s : 'reconnecting'));
		const t = setInterval(() => {
			if (!pending.current.length) return;
			const add = pending.current;
			pending.current = [];
			setEvents((old) => {
				const all = old.concat(add);
				return all.length > 200000 ? all.slice(all.length - 200000) : all;
			});
		}, 200);
		return () => {
			clearInterval(t);
			es.close();
		};
	}, [id]);
	const funcs = useMemo(() => [...new Set(events.map((e) => e.func))], [events.length]);
	const shown = useMemo(() => (fn ? events.filter((e) => e.func === fn) : events), [events, fn]);
	const t = info.data;
	const stop = async () => {
		try {
			await api(`/api/traces/${id}/stop`, { method: 'POST' });
			info.reload();
		} catch (e) {
			setErr(e.message);
		}
	};
	const cur = sel >= 0 ? shown[sel] : null;
	return (
		<section class="trace">
			<div class="title-row">
				<h1>Trace #{id}</h1>
				{t ? (
					<span class="muted">
						pid {t.pid} · <span class="mono">{t.regex}</span> · {t.state}
						{t.end_reason ? ` (${t.end_reason})` : ''}
					</span>
				) : null}
				<span class={'badge ' + (live === 'live' ? 'ok' : '')} role="status" data-testid="stream-state">
					{live}
				</span>
				<span role="status" data-testid="event-count">{events.length} events</span>
				<button onClick={stop} disabled={!t || t.state !== 'running'}>
					Stop
				</button>
			</div>
			{info.error ? <Failure error={info.error} /> : null}
			{err ? <div class="error" role="alert">{err}</div> : null}
			<div class="row">
				<label>
					Function{' '}
					<select value={fn} onChange={(e) => { setFn(e.currentTarget.value); setSel(-1); }}>
						<option value="">all</option>
						{funcs.map((f) => (
							<option key={f}>{f}</option>
						))}
					</select>
				</label>
			</div>
			<Histogram events={events} fn={fn} />
			<div class="split wide-left">
				<VirtualList
					label="Trace events"
					items={shown}
					rowHeight={26}
					selected={sel}
					onSelect={setSel}
					header={
						<div class="vhead" role="row">
							<span role="columnheader" class="e-t">Time</span>
							<span role="columnheader" class="e-k">Kind</span>
							<span role="columnheader" class="e-g">Goroutine</span>
							<span role="columnheader" class="e-f">Function</span>
							<span role="columnheader" class="e-a">Arguments / results</span>
							<span role="columnheader" class="e-d">Duration</span>
						</div>
					}
					renderRow={(e) => [
						<span role="gridcell" class="e-t mono">{new Date(e.ts_ns / 1e6).toISOString().slice(11, 23)}</span>,
						<span role="gridcell" class="e-k">{e.kind}</span>,
						<span role="gridcell" class="e-g num">{e.goid}</span>,
						<span role="gridcell" class="e-f mono">{e.func}</span>,
						<span role="gridcell" class={'e-a mono' + (e.error ? ' err' : '')}>{e.error ? `error: ${e.error}` : short(e.kind === 'return' ? e.results : e.args)}</span>,
						<span role="gridcell" class="e-d num">{fmtDur(e.duration_ns)}</span>,
					]}
				/>
				<div class="pane">
					{cur ? (
						<div>
							<h2>{cur.kind} of {cur.func}</h2>
							<pre class="mono">{JSON.stringify(cur, null, 2)}</pre>
						</div>
					) : (
						<p class="muted">Select an event (arrow keys) to see it whole.</p>
					)}
				</div>
			</div>
		</section>
	);
}
