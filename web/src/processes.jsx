// processes.jsx - the processes on the host (/api/processes) with "snapshot now",
// "trace…", "schedule", and one process's snapshots over time.
import { useState } from 'preact/hooks';
import { api, useApi, Link, navigate, fmtTime } from './api.jsx';
import { Chart, Failure, Loading } from './widgets.jsx';

// Takes a snapshot of pid and opens it.
async function snapshotNow(pid, setMsg) {
	setMsg({ text: `Taking a snapshot of ${pid}…` });
	try {
		const r = await api('/api/snapshots', { method: 'POST', body: { pid: Number(pid), vars: true } });
		navigate(`/snapshots/${r.snapshot_id}`);
	} catch (e) {
		setMsg({ error: e.message });
	}
}

function Actions({ pid, setMsg }) {
	return (
		<span class="actions">
			<button onClick={() => snapshotNow(pid, setMsg)}>Snapshot now</button>
			<Link class="button" href={`/traces/new?pid=${pid}`}>
				Trace…
			</Link>
			<Link class="button" href={`/processes/${pid}`}>
				History
			</Link>
		</span>
	);
}

export function Processes() {
	const procs = useApi('/api/processes');
	const snaps = useApi('/api/snapshots?limit=1000');
	const [pid, setPid] = useState('');
	const [msg, setMsg] = useState(null);
	const list = procs.data ? (Array.isArray(procs.data) ? procs.data : procs.data.processes || []) : [];
	const seen = new Map();
	for (const s of (snaps.data && snaps.data.snapshots) || []) if (!seen.has(s.pid)) seen.set(s.pid, s);
	return (
		<section>
			<h1>Processes</h1>
			<form
				class="row"
				onSubmit={(e) => {
					e.preventDefault();
					if (pid) snapshotNow(pid, setMsg);
				}}
			>
				<label>
					PID <input name="pid" inputMode="numeric" pattern="[0-9]+" value={pid} onInput={(e) => setPid(e.currentTarget.value)} />
				</label>
				<button type="submit" disabled={!pid}>
					Snapshot now
				</button>
				<Link class="button" href={pid ? `/traces/new?pid=${pid}` : '/traces/new'}>
					Trace…
				</Link>
			</form>
			{msg ? msg.error ? <div class="error" role="alert">{msg.error}</div> : <p role="status">{msg.text}</p> : null}
			<h2>Go processes on this host</h2>
			{procs.loading ? <Loading what="processes" /> : procs.error ? <Failure error={procs.error} what="The process list (/api/processes)" /> : (
				<table class="grid">
					<thead>
						<tr><th>PID</th><th>Command</th><th>Go</th><th>Binary</th><th>cgroup</th><th>Actions</th></tr>
					</thead>
					<tbody>
						{list.map((p) => (
							<tr key={p.pid}>
								<td>{p.pid}{p.ns_pid && p.ns_pid !== p.pid ? <span class="muted"> ({p.ns_pid} in its namespace)</span> : null}</td>
								<td class="mono">{p.command}</td>
								<td>{p.go_version}</td>
								<td class="mono" title={p.build_id}>{p.exe}{p.stripped ? <span class="badge">stripped</span> : null}{p.pie ? <span class="badge">PIE</span> : null}</td>
								<td class="mono">{p.cgroup}</td>
								<td><Actions pid={p.pid} setMsg={setMsg} /></td>
							</tr>
						))}
						{!list.length ? <tr><td colSpan={6} class="muted">No Go processes found.</td></tr> : null}
					</tbody>
				</table>
			)}
			<h2>Processes with snapshots</h2>
			{snaps.loading ? <Loading what="snapshots" /> : snaps.error ? <Failure error={snaps.error} /> : (
				<table class="grid">
					<thead>
						<tr><th>PID</th><th>Binary</th><th>Go</th><th>Latest snapshot</th><th>Goroutines</th><th>Actions</th></tr>
					</thead>
					<tbody>
						{[...seen.values()].map((s) => (
							<tr key={s.pid}>
								<td>{s.pid}</td>
								<td class="mono">{s.path}</td>
								<td>{s.go_version}</td>
								<td><Link href={`/snapshots/${s.snapshot_id}`}>#{s.snapshot_id}</Link> {fmtTime(s.taken_at)}</td>
								<td class="num">{s.goroutines}</td>
								<td><Actions pid={s.pid} setMsg={setMsg} /></td>
							</tr>
						))}
						{!seen.size ? <tr><td colSpan={6} class="muted">No snapshots yet: give a PID above.</td></tr> : null}
					</tbody>
				</table>
			)}
		</section>
	);
}

export function Process({ pid }) {
	const snaps = useApi(`/api/snapshots?pid=${pid}&limit=1000`);
	const states = useApi(`/api/sql?sql=${encodeURIComponent(
		'SELECT sn.id AS snapshot, sn.taken_at, g.status, count(*) AS n FROM snapshots sn JOIN processes p ON p.id = sn.process JOIN goroutines g ON g.snapshot = sn.id WHERE p.pid = ' + Number(pid) + ' GROUP BY 1, 2, 3 ORDER BY 2',
	)}`);
	const [msg, setMsg] = useState(null);
	const [every, setEvery] = useState('30s');
	let chart = null;
	if (states.data && states.data.rows && states.data.rows.length) {
		const times = [...new Set(states.data.rows.map((r) => r[1]))];
		const names = [...new Set(states.data.rows.map((r) => r[2]))];
		const idx = new Map(times.map((t, i) => [t, i]));
		const series = names.map((n) => ({ label: n, values: times.map(() => 0) }));
		for (const r of states.data.rows) series[names.indexOf(r[2])].values[idx.get(r[1])] = r[3];
		chart = <Chart x={times.map((t) => t / 1e9)} series={series} xTime title="Goroutines by state" />;
	}
	return (
		<section>
			<h1>Process {pid}</h1>
			<div class="row">
				<Actions pid={pid} setMsg={setMsg} />
				<form
					class="row"
					onSubmit={async (e) => {
						e.preventDefault();
						try {
							const r = await api('/api/schedules', { method: 'POST', body: { pid: Number(pid), every, vars: true } });
							setMsg({ text: `Schedule ${r.schedule_id}: a snapshot every ${every}.` });
						} catch (err) {
							setMsg({ error: err.message });
						}
					}}
				>
					<label>
						Schedule every <input value={every} size={6} onInput={(e) => setEvery(e.currentTarget.value)} />
					</label>
					<button type="submit">Schedule</button>
				</form>
			</div>
			{msg ? msg.error ? <div class="error" role="alert">{msg.error}</div> : <p role="status">{msg.text}</p> : null}
			{chart}
			<h2>Snapshots</h2>
			{snaps.loading ? <Loading what="snapshots" /> : snaps.error ? <Failure error={snaps.error} /> : (
				<table class="grid">
					<thead>
						<tr><th>Snapshot</th><th>Taken</th><th>Goroutines</th><th>Reader</th><th>Capture</th><th>Compare</th></tr>
					</thead>
					<tbody>
						{snaps.data.snapshots.map((s, i, all) => (
							<tr key={s.snapshot_id}>
								<td><Link href={`/snapshots/${s.snapshot_id}`}>#{s.snapshot_id}</Link></td>
								<td>{fmtTime(s.taken_at)}</td>
								<td class="num">{s.goroutines}</td>
								<td>{s.reader}</td>
								<td class="num">{s.duration_us} µs</td>
								<td>{all[i + 1] ? <Link href={`/snapshots/${all[i + 1].snapshot_id}/compare/${s.snapshot_id}`}>with #{all[i + 1].snapshot_id}</Link> : null}</td>
							</tr>
						))}
					</tbody>
				</table>
			)}
		</section>
	);
}
