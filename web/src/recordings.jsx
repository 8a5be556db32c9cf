// recordings.jsx - rr recordings (/api/recordings): the list with stop and download, and a
// replay page that starts (or reuses) the recording's replay server at a moment and shows
// how to attach gdb, Delve or VS Code to it, or opens the replay debugger (debugger.jsx).
import { useState } from 'preact/hooks';
import { api, useApi, Link, fmtTime, fmtBytes, query } from './api.jsx';
import { Failure, Loading } from './widgets.jsx';

function duration(r) {
	if (!r.started || !r.ended) return r.status === 'recording' ? 'recording…' : '';
	return `${((r.ended - r.started) / 1e9).toFixed(1)} s`;
}

export function Recordings() {
	const res = useApi('/api/recordings');
	const [busy, setBusy] = useState(null);
	const [err, setErr] = useState(null);
	const list = res.data ? (Array.isArray(res.data) ? res.data : res.data.recordings || []) : [];
	const stop = async (id) => {
		setBusy(id);
		setErr(null);
		try {
			await api(`/api/recordings/${id}/stop`, { method: 'POST' });
			res.reload();
		} catch (e) {
			setErr(e);
		} finally {
			setBusy(null);
		}
	};
	return (
		<section>
			<h1>Recordings</h1>
			{err ? <Failure error={err} what="Stopping the recording" /> : null}
			{res.loading ? <Loading what="recordings" /> : res.error ? <Failure error={res.error} what="Recordings (the /api/recordings API)" /> : (
				<table class="grid">
					<thead>
						<tr><th>Recording</th><th>Client key</th><th>Started</th><th>Duration</th><th>Size</th><th>Status</th><th>Replayable</th><th /></tr>
					</thead>
					<tbody>
						{list.map((r) => (
							<tr key={r.id}>
								<td>#{r.id}</td>
								<td class="mono">{r.client_key}</td>
								<td>{fmtTime(r.started)}</td>
								<td class="num">{duration(r)}</td>
								<td class="num">{fmtBytes(r.bytes_packed)}</td>
								<td>{r.status}</td>
								<td>{r.replayable === true ? 'yes' : r.replayable === false ? `no${r.why_not ? `: ${r.why_not}` : ''}` : '…'}</td>
								<td>
									{r.status === 'recording' ? (
										<button type="button" disabled={busy === r.id} onClick={() => stop(r.id)}>Stop</button>
									) : null}
									{r.archive ? <a href={`/api/recordings/${r.id}/download`} download>Download</a> : null}
									{r.replayable ? <> {' '}<Link href={`/recordings/${r.id}/replay`}>Replay</Link> <Link href={`/recordings/${r.id}/debug`}>Debug</Link></> : null}
								</td>
							</tr>
						))}
						{!list.length ? <tr><td colSpan={8} class="muted">No recordings (start one with glimpse record or serve --record).</td></tr> : null}
					</tbody>
				</table>
			)}
		</section>
	);
}

export function Replay({ id }) {
	const [at, setAt] = useState(query('at') || '');
	const [res, setRes] = useState(null);
	const [err, setErr] = useState(null);
	const [busy, setBusy] = useState(false);
	const open = async (ev) => {
		ev.preventDefault();
		setBusy(true);
		setErr(null);
		try {
			setRes(await api(`/api/recordings/${id}/replay`, { method: 'POST', body: at ? { at } : {} }));
		} catch (e) {
			setErr(e);
		} finally {
			setBusy(false);
		}
	};
	const cmds = (res && res.commands) || {};
	return (
		<section>
			<h1>Replay of recording #{id}</h1>
			<form onSubmit={open} class="row">
				<label for="replay-at">Moment</label>
				<input id="replay-at" value={at} placeholder="snapshot:ID or event:ID (empty: the start)" onInput={(e) => setAt(e.currentTarget.value)} />
				<button type="submit" disabled={busy}>{busy ? 'Starting…' : 'Open replay at this moment'}</button>
			</form>
			{err ? <Failure error={err} what="Opening the replay" /> : null}
			{res ? (
				<div>
					<p>
						rr's gdbserver for this recording is at <code>{res.gdbserver}</code>, stopped at rr event {res.event}
						{res.warm ? ' (a replay server kept warm since the recording ended)' : ''}.
					</p>
					<h2>Attach</h2>
					<dl>
						{Object.entries(cmds).map(([k, v]) => (
							<>
								<dt>{k}</dt>
								<dd><pre class="mono">{typeof v === 'string' ? v : JSON.stringify(v, null, 2)}</pre></dd>
							</>
						))}
					</dl>
				</div>
			) : null}
			<p>
				Or step through it here, forwards and backwards:{' '}
				<Link href={`/recordings/${id}/debug${at ? `?at=${encodeURIComponent(at)}` : ''}`}>open the replay debugger{at ? ` at ${at}` : ''}</Link>.
			</p>
		</section>
	);
}
