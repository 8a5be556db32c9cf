// snapshot.jsx - one snapshot, made for 100k goroutines: groups by identical stack
// (pprof's debug=1) with counts by state; filters by function or file, state, wait
// time and a variable's value; a group opens to its goroutines, a goroutine to its
// frames and variables; an icicle of all stacks that filters when clicked; and the
// comparison of two snapshots of a process.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, useApi, Link, navigate, setQuery, query, fmtTime, fmtWait, shortFile } from './api.jsx';
import { VirtualList, Flame, buildTree, Value, Loading, Failure } from './widgets.jsx';

const STATES = ['running', 'runnable', 'waiting', 'syscall', 'dead', 'idle', 'copystack', 'preempted'];

// Prepares the groups once: text to search and the stack outermost first.
function prepare(groups) {
	for (const g of groups) {
		g.frames = g.frames || [];
		g.hay = g.frames.map((f) => `${f.func}\n${f.file}:${f.line}`).join('\n').toLowerCase();
		g.path = g.frames.map((f) => f.func).reverse();
		const top = g.frames.find((f) => f.func === g.top_func) || g.frames[0] || {};
		g.where = top.file ? `${shortFile(top.file)}:${top.line}` : '';
	}
	return groups;
}

function filterGroups(groups, f) {
	const q = f.q.toLowerCase();
	const minWait = Number(f.wait) || 0;
	return groups.filter(
		(g) => (!q || g.hay.includes(q)) && (!f.state || g.status === f.state) && (!minWait || (g.max_wait_ms || 0) >= minWait),
	);
}

function stateCounts(groups) {
	const m = new Map();
	let total = 0;
	for (const g of groups) {
		m.set(g.status, (m.get(g.status) || 0) + g.goroutines);
		total += g.goroutines;
	}
	return { m: [...m.entries()].sort((a, b) => b[1] - a[1]), total };
}

function Frames({ frames, hit }) {
	return (
		<ol class="frames">
			{frames.map((f, i) => (
				<li key={i}>
					<div class="frame-head">
						<span class="mono fn">{f.func}</span>
						{f.inlined ? <span class="badge">inlined</span> : null}
						<span class="mono muted"> {f.file}:{f.line}</span>
					</div>
					{f.vars && f.vars.length ? (
						<div class="vtree" role="tree" aria-label={`variables of ${f.func}`}>
							{f.vars.map((v, k) => (
								<div key={k} class={hit && v.name === hit ? 'hit' : ''}>
									<Value name={v.name} v={v.value} type={v.type} truncated={v.truncated} />
								</div>
							))}
						</div>
					) : null}
				</li>
			))}
		</ol>
	);
}

function Goroutine({ g, takenAt, hit, open: startOpen }) {
	const [open, setOpen] = useState(!!startOpen);
	const wait = g.wait_since_ns ? Math.round((takenAt - g.wait_since_ns) / 1e6) : null;
	return (
		<div class="goroutine">
			<button class="link" aria-expanded={open ? 'true' : 'false'} onClick={() => setOpen(!open)}>
				{open ? '▾' : '▸'} goroutine {g.goid} [{g.status}{g.wait_reason ? `, ${g.wait_reason}` : ''}
				{wait != null ? `, ${fmtWait(wait)}` : ''}]
			</button>
			{g.torn ? <span class="badge warn">torn</span> : null}
			{g.stack_note ? <span class="badge warn">{g.stack_note}</span> : null}
			{open ? <Frames frames={g.frames} hit={hit} /> : null}
		</div>
	);
}

function GroupDetail({ id, group, takenAt }) {
	const page = useApi(
		`/api/snapshots/${id}/goroutines?stack=${group.stack_id}&status=${encodeURIComponent(group.status)}&limit=50`,
	);
	return (
		<div class="detail">
			<h2>
				{group.goroutines} goroutine{group.goroutines === 1 ? '' : 's'} in {group.top_func}
			</h2>
			<p class="muted">
				{group.status}
				{group.wait_reason ? `, ${group.wait_reason}` : ''}
				{group.max_wait_ms != null ? `, waited up to ${fmtWait(group.max_wait_ms)}` : ''}
				{group.created_by ? `; created by ${group.created_by}` : ''}
			</p>
			<details>
				<summary>Stack</summary>
				<Frames frames={group.frames} />
			</details>
			{page.loading ? <Loading what="goroutines" /> : page.error ? <Failure error={page.error} /> : (
				<div>
					<p class="muted">
						{page.data.total > page.data.goroutines.length ? `The first ${page.data.goroutines.length} of ${page.data.total}` : `${page.data.total}`} goroutines:
					</p>
					{page.data.goroutines.map((g, i) => (
						<Goroutine key={g.goid} g={g} takenAt={takenAt} open={i === 0} />
					))}
				</div>
			)}
		</div>
	);
}

function VarResults({ id, v, takenAt }) {
	const name = v.split('=')[0];
	const res = useApi(`/api/snapshots/${id}/goroutines?var=${encodeURIComponent(v)}&limit=100`);
	if (res.loading) return <Loading what={`goroutines with ${v}`} />;
	if (res.error) return <Failure error={res.error} />;
	return (
		<div class="detail" aria-live="polite">
			<h2>
				{res.data.total} goroutine{res.data.total === 1 ? '' : 's'} with a variable {v.includes('=') ? v.replace('=', ' == ') : name}
			</h2>
			{res.data.goroutines.map((g) => (
				<Goroutine key={g.goid} g={g} takenAt={takenAt} hit={name} open />
			))}
		</div>
	);
}

export function Snapshot({ id, dark }) {
	const res = useApi(`/api/snapshots/${id}/groups?limit=100000`);
	const groups = useMemo(() => (res.data ? prepare(res.data.groups) : []), [res.data]);
	const [f, setF] = useState({ q: query('q'), state: query('state'), wait: query('wait'), v: query('var') });
	const [varInput, setVarInput] = useState(query('var'));
	const [sel, setSel] = useState(-1);
	const [open, setOpen] = useState(null);
	const [showFlame, setShowFlame] = useState(true);
	const search = useRef(null);
	const shown = useMemo(() => filterGroups(groups, f), [groups, f.q, f.state, f.wait]);
	const counts = useMemo(() => stateCounts(shown), [shown]);
	const all = useMemo(() => stateCounts(groups), [groups]);
	const tree = useMemo(() => buildTree(shown.map((g) => ({ frames: g.path, count: g.goroutines }))), [shown]);
	const others = useApi(res.data ? `/api/snapshots?pid=${res.data.pid}&limit=50` : null);
	const set = (k, v) => {
		setF((o) => ({ ...o, [k]: v }));
		setQuery(k === 'v' ? 'var' : k, v);
		setSel(-1);
	};
	useEffect(() => {
		const key = (e) => {
			if (e.key === '/' && document.activeElement.tagName !== 'INPUT' && document.activeElement.tagName !== 'TEXTAREA') {
				e.preventDefault();
				search.current && search.current.focus();
			}
		};
		addEventListener('keydown', key);
		return () => removeEventListener('keydown', key);
	}, []);
	if (res.loading) return <Loading what={`snapshot ${id}`} />;
	if (res.error) return <Failure error={res.error} />;
	const head = res.data;
	const cur = open != null ? shown[open] : null;
	return (
		<section class="snapshot">
			<div class="title-row">
				<h1>
					Snapshot #{id} <span class="muted">of {head.pid} ({head.path && head.path.split('/').pop()}, {head.go_version})</span>
				</h1>
				<span class="muted">
					{fmtTime(head.taken_at)} · {head.goroutines} goroutines · {head.reader} · {head.duration_us} µs
				</span>
				{others.data && others.data.snapshots.length > 1 ? (
					<label class="compare">
						Compare with{' '}
						<select
							aria-label="Compare with another snapshot"
							onChange={(e) => e.currentTarget.value && navigate(`/snapshots/${e.currentTarget.value}/compare/${id}`)}
						>
							<option value="">—</option>
							{others.data.snapshots
								.filter((s) => s.snapshot_id !== Number(id))
								.map((s) => (
									<option key={s.snapshot_id} value={s.snapshot_id}>
										#{s.snapshot_id} {fmtTime(s.taken_at)} ({s.goroutines})
									</option>
								))}
						</select>
					</label>
				) : null}
			</div>
			<div class="filters" role="search">
				<input
					ref={search}
					type="search"
					class="grow"
					aria-label="Filter by function or file (press / to focus)"
					placeholder="Function or file (press /)"
					value={f.q}
					onInput={(e) => set('q', e.currentTarget.value)}
				/>
				<select aria-label="State" value={f.state} onChange={(e) => set('state', e.currentTarget.value)}>
					<option value="">any state</option>
					{STATES.concat(all.m.map(([s]) => s).filter((s) => !STATES.includes(s))).map((s) => (
						<option key={s} value={s}>
							{s}
						</option>
					))}
				</select>
				<input
					type="number"
					min="0"
					aria-label="Waited at least (ms)"
					placeholder="waited ≥ ms"
					value={f.wait}
					onInput={(e) => set('wait', e.currentTarget.value)}
				/>
				<form
					class="row"
					onSubmit={(e) => {
						e.preventDefault();
						set('v', varInput.trim());
					}}
				>
					<input
						aria-label="Variable: name or name=value"
						placeholder="variable: userID=42"
						value={varInput}
						onInput={(e) => setVarInput(e.currentTarget.value)}
					/>
					<button type="submit">Find</button>
					{f.v ? (
						<button type="button" onClick={() => { setVarInput(''); set('v', ''); }}>
							Clear
						</button>
					) : null}
				</form>
			</div>
			<div class="states" aria-label="Goroutines by state">
				<span>
					<strong data-testid="shown-count">{counts.total}</strong> of {all.total} goroutines in {shown.length} groups:
				</span>
				{counts.m.map(([s, n]) => (
					<button key={s} class={'chip state-' + s + (f.state === s ? ' on' : '')} aria-pressed={f.state === s ? 'true' : 'false'} onClick={() => set('state', f.state === s ? '' : s)}>
						{s} {n}
					</button>
				))}
				<button class="link right" aria-expanded={showFlame ? 'true' : 'false'} onClick={() => setShowFlame(!showFlame)}>
					{showFlame ? 'Hide' : 'Show'} flame graph
				</button>
			</div>
			{showFlame ? <Flame tree={tree} dark={dark} picked={f.q} onPick={(name) => set('q', name)} /> : null}
			<div class="split">
				<VirtualList
					label="Goroutine groups"
					items={shown}
					rowHeight={30}
					selected={sel}
					onSelect={(i) => { setSel(i); setOpen(i); }}
					onOpen={(i) => setOpen(i)}
					header={
						<div class="vhead" role="row">
							<span role="columnheader" class="c-n">Count</span>
							<span role="columnheader" class="c-s">State</span>
							<span role="columnheader" class="c-w">Waited</span>
							<span role="columnheader" class="c-f">Function</span>
							<span role="columnheader" class="c-l">Location</span>
						</div>
					}
					renderRow={(g) => [
						<span role="gridcell" class="c-n num">{g.goroutines}</span>,
						<span role="gridcell" class={'c-s state-' + g.status}>
							{g.status}
							{g.wait_reason ? <span class="muted"> {g.wait_reason}</span> : null}
						</span>,
						<span role="gridcell" class="c-w num">{fmtWait(g.max_wait_ms)}</span>,
						<span role="gridcell" class="c-f mono">{g.top_func}</span>,
						<span role="gridcell" class="c-l mono muted">{g.where}</span>,
					]}
				/>
				<div class="pane">
					{f.v ? <VarResults id={id} v={f.v} takenAt={head.taken_at} /> : cur ? <GroupDetail key={cur.stack_id + cur.status} id={id} group={cur} takenAt={head.taken_at} /> : (
						<p class="muted">Select a group (arrow keys, Enter) to see its goroutines, their frames and variables.</p>
					)}
				</div>
			</div>
		</section>
	);
}

// Groups keyed by stack (functions) and state, for comparing two snapshots.
function keyed(groups) {
	const m = new Map();
	for (const g of groups) {
		const k = g.status + '|' + (g.frames || []).map((f) => f.func).join('<');
		const e = m.get(k) || { n: 0, g };
		e.n += g.goroutines;
		m.set(k, e);
	}
	return m;
}

export function Compare({ a, b }) {
	const A = useApi(`/api/snapshots/${a}/groups?limit=100000`);
	const B = useApi(`/api/snapshots/${b}/groups?limit=100000`);
	if (A.loading || B.loading) return <Loading what="both snapshots" />;
	if (A.error || B.error) return <Failure error={A.error || B.error} />;
	const ka = keyed(A.data.groups);
	const kb = keyed(B.data.groups);
	const rows = [];
	for (const k of new Set([...ka.keys(), ...kb.keys()])) {
		const x = ka.get(k);
		const y = kb.get(k);
		const g = (y || x).g;
		rows.push({ before: x ? x.n : 0, after: y ? y.n : 0, d: (y ? y.n : 0) - (x ? x.n : 0), g });
	}
	rows.sort((p, q) => Math.abs(q.d) - Math.abs(p.d) || q.after - p.after);
	return (
		<section>
			<h1>
				Snapshot <Link href={`/snapshots/${a}`}>#{a}</Link> → <Link href={`/snapshots/${b}`}>#{b}</Link>
			</h1>
			<p class="muted">
				{A.data.goroutines} → {B.data.goroutines} goroutines ({B.data.goroutines - A.data.goroutines >= 0 ? '+' : ''}
				{B.data.goroutines - A.data.goroutines}). Stack groups that grew come first: a group that only grows is a leak suspect.
			</p>
			<table class="grid compare-table">
				<thead>
					<tr><th>Change</th><th>Before</th><th>After</th><th>State</th><th>Function</th><th>Stack</th></tr>
				</thead>
				<tbody>
					{rows.map((r, i) => (
						<tr key={i} class={r.d > 0 ? 'grew' : r.d < 0 ? 'shrank' : ''}>
							<td class="num delta">{r.d > 0 ? `+${r.d}` : r.d}</td>
							<td class="num">{r.before}</td>
							<td class="num">{r.after}</td>
							<td>{r.g.status}{r.g.wait_reason ? <span class="muted"> {r.g.wait_reason}</span> : null}</td>
							<td class="mono">{r.g.top_func}</td>
							<td class="mono muted small">{(r.g.frames || []).slice(0, 4).map((f) => f.func).join(' ← ')}</td>
						</tr>
					))}
				</tbody>
			</table>
		</section>
	);
}
