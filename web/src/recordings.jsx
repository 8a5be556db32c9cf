// recordings.jsx - rr recordings (/api/recordings, issue 15) and the replay page. This
// build's server may not have the recordings API yet: then both say so plainly.
import { useApi, Link, fmtTime, fmtBytes } from './api.jsx';
import { Failure, Loading } from './widgets.jsx';

export function Recordings() {
	const res = useApi('/api/recordings');
	const list = res.data ? (Array.isArray(res.data) ? res.data : res.data.recordings || []) : [];
	return (
		<section>
			<h1>Recordings</h1>
			{res.loading ? <Loading what="recordings" /> : res.error ? <Failure error={res.error} what="Recording (the /api/recordings API)" /> : (
				<table class="grid">
					<thead>
						<tr><th>Recording</th><th>Client key</th><th>Started</th><th>Duration</th><th>Size</th><th>Replayable</th><th /></tr>
					</thead>
					<tbody>
						{list.map((r) => (
							<tr key={r.recording_id || r.id}>
								<td>#{r.recording_id || r.id}</td>
								<td class="mono">{r.client_key}</td>
								<td>{fmtTime(r.started_at)}</td>
								<td class="num">{r.duration_ms != null ? `${(r.duration_ms / 1000).toFixed(1)} s` : ''}</td>
								<td class="num">{fmtBytes(r.bytes || r.size)}</td>
								<td>{r.replayable ? 'yes' : `no${r.why_not ? `: ${r.why_not}` : ''}`}</td>
								<td>{r.replayable ? <Link href={`/recordings/${r.recording_id || r.id}/replay`}>Replay</Link> : null}</td>
							</tr>
						))}
						{!list.length ? <tr><td colSpan={7} class="muted">No recordings.</td></tr> : null}
					</tbody>
				</table>
			)}
		</section>
	);
}

export function Replay({ id }) {
	return (
		<section>
			<h1>Replay of recording #{id}</h1>
			<div class="notice" role="status">
				<strong>Replay in the browser is not built yet.</strong> It needs the recordings API of issue 15 (an rr
				gdbserver per recording, driven through <code>gdb --interpreter=mi</code>), which this server does not have.
				Meanwhile attach a debugger to the recording yourself: <code>rr replay -s PORT</code> and then
				<code> gdb -ex 'target extended-remote :PORT'</code>, or Delve's <code>dlv replay TRACE_DIR</code>.
			</div>
		</section>
	);
}
