// sql.jsx - the SQL console: CodeMirror 6 with completion of the store's tables, views
// and columns, a schema browser beside it, results as a table and a chart, CSV
// download, and saved queries shared by everyone using the server.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { EditorView, basicSetup } from 'codemirror';
import { keymap } from '@codemirror/view';
import { sql as sqlLang, SQLite } from '@codemirror/lang-sql';
import { oneDarkTheme } from '@codemirror/theme-one-dark';
import { HighlightStyle, syntaxHighlighting } from '@codemirror/language';
import { tags } from '@lezer/highlight';

// Light colours with at least 4.5:1 contrast on white (WCAG AA); CodeMirror's default
// style has lighter ones.
const lightHighlight = HighlightStyle.define([
	{ tag: tags.keyword, color: '#6f1fa8' },
	{ tag: [tags.string, tags.special(tags.string)], color: '#0a6632' },
	{ tag: [tags.number, tags.bool, tags.null], color: '#0b4fa0' },
	{ tag: tags.comment, color: '#57606a', fontStyle: 'italic' },
	{ tag: [tags.typeName, tags.standard(tags.name)], color: '#8a3a00' },
	{ tag: [tags.operator, tags.punctuation], color: '#1b1f24' },
	{ tag: tags.propertyName, color: '#1b1f24' },
]);
// Dark colours with at least 5.5:1 contrast on One Dark's background (#282c34) and
// its active line; One Dark's own names (#e06c75) have 4.4:1, under AA.
const darkHighlight = HighlightStyle.define([
	{ tag: tags.keyword, color: '#e0aaff' },
	{ tag: [tags.string, tags.special(tags.string)], color: '#a8e08a' },
	{ tag: [tags.number, tags.bool, tags.null], color: '#f0b070' },
	{ tag: tags.comment, color: '#a0a8b8', fontStyle: 'italic' },
	{ tag: [tags.typeName, tags.standard(tags.name)], color: '#7fd4e8' },
	{ tag: [tags.name, tags.propertyName], color: '#f4a0a8' },
	{ tag: [tags.operator, tags.punctuation], color: '#d8dee9' },
]);
import { api, useApi, setQuery, query } from './api.jsx';
import { Chart, Failure, Loading } from './widgets.jsx';

const DEFAULT_SQL = 'SELECT status, count(*) AS goroutines\nFROM goroutines\nGROUP BY status\nORDER BY 2 DESC';

// Tables and views with their columns and types, read with the read-only SQL
// endpoint: each one's columns are those of "SELECT * FROM it LIMIT 0".
function useSchema() {
	const [state, setState] = useState({ loading: true, data: null, error: null });
	useEffect(() => {
		(async () => {
			const list = await api('/api/sql', {
				method: 'POST',
				body: { sql: "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name" },
			});
			const cols = await Promise.all(
				list.rows.map(([, name]) => api('/api/sql', { method: 'POST', body: { sql: `SELECT * FROM "${name.replace(/"/g, '""')}" LIMIT 0` } }).catch(() => ({ columns: [], types: [] }))),
			);
			const rows = [];
			list.rows.forEach(([type, name], i) => cols[i].columns.forEach((c, k) => rows.push([type, name, c, cols[i].types[k]])));
			setState({ loading: false, data: { rows }, error: null });
		})().catch((error) => setState({ loading: false, data: null, error }));
	}, []);
	return state;
}

const nonce = (document.querySelector('meta[name=csp-nonce]') || {}).content || '';

// The editor owns its text: typing does not re-render the page (preact never
// touches the editor's DOM); setDoc replaces the text from outside.
function Editor({ initial, textRef, setDocRef, onRun, schema, dark }) {
	const host = useRef(null);
	const run = useRef(onRun);
	run.current = onRun;
	useEffect(() => {
		const v = new EditorView({
			doc: textRef.current || initial,
			parent: host.current,
			extensions: [
				keymap.of([{ key: 'Mod-Enter', run: () => (run.current(), true) }]),
				basicSetup,
				sqlLang({ dialect: SQLite, schema, upperCaseKeywords: true }),
				EditorView.updateListener.of((u) => {
					if (u.docChanged) textRef.current = u.state.doc.toString();
				}),
				EditorView.contentAttributes.of({ 'aria-label': 'SQL query (Ctrl+Enter runs it)' }),
				dark ? [oneDarkTheme, syntaxHighlighting(darkHighlight)] : syntaxHighlighting(lightHighlight),
				EditorView.cspNonce.of(nonce),
			],
		});
		setDocRef.current = (text) => {
			v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: text } });
			v.focus();
		};
		return () => v.destroy();
	}, [schema, dark]);
	return <div class="editor" ref={host} />;
}

function Results({ res }) {
	const [mode, setMode] = useState('table');
	const chart = useMemo(() => {
		if (!res || !res.rows.length || res.columns.length < 2) return null;
		const num = (i) => res.rows.every((r) => r[i] == null || typeof r[i] === 'number');
		const ys = res.columns.map((c, i) => i).filter((i) => i > 0 && num(i));
		if (!ys.length) return null;
		const xNum = num(0);
		const x = res.rows.map((r, i) => (xNum ? r[0] : i));
		return { x, series: ys.map((i) => ({ label: res.columns[i], values: res.rows.map((r) => r[i]) })), bars: !xNum, labels: xNum ? null : res.rows.map((r) => String(r[0])) };
	}, [res]);
	return (
		<div class="results">
			<div class="row" role="tablist" aria-label="Result view">
				<button role="tab" aria-selected={mode === 'table' ? 'true' : 'false'} onClick={() => setMode('table')}>Table</button>
				<button role="tab" aria-selected={mode === 'chart' ? 'true' : 'false'} disabled={!chart} onClick={() => setMode('chart')}>Chart</button>
				<span class="muted" data-testid="sql-status">
					{res.rows.length} row{res.rows.length === 1 ? '' : 's'} in {res.elapsed_ms} ms{res.truncated ? ' (cut at a limit)' : ''}
				</span>
			</div>
			{mode === 'chart' && chart ? (
				<div>
					<Chart x={chart.x} series={chart.series} bars={chart.bars} title={res.columns.join(', ')} xLabel={res.columns[0]} xLabels={chart.labels} />
				</div>
			) : (
				<div class="table-scroll">
					<table class="grid">
						<thead>
							<tr>{res.columns.map((c) => <th key={c}>{c}</th>)}</tr>
						</thead>
						<tbody>
							{res.rows.slice(0, 2000).map((r, i) => (
								<tr key={i}>{r.map((v, k) => <td key={k} class={typeof v === 'number' ? 'num' : 'mono'}>{v == null ? <span class="muted">NULL</span> : String(v)}</td>)}</tr>
							))}
						</tbody>
					</table>
					{res.rows.length > 2000 ? <p class="muted">The first 2,000 of {res.rows.length} rows are shown; the CSV has them all.</p> : null}
				</div>
			)}
		</div>
	);
}

export function Sql({ dark }) {
	const schemaRes = useSchema();
	const saved = useApi('/api/queries');
	const textRef = useRef(query('q') || DEFAULT_SQL);
	const setDocRef = useRef(() => {});
	const setText = (t) => setDocRef.current(t);
	const [res, setRes] = useState(null);
	const [err, setErr] = useState(null);
	const [running, setRunning] = useState(false);
	const [name, setName] = useState('');
	const [author, setAuthor] = useState(localStorage.getItem('glimpse.author') || '');
	const [savedMsg, setSavedMsg] = useState('');
	const schema = useMemo(() => {
		const s = {};
		if (schemaRes.data) for (const [, t, c] of schemaRes.data.rows) (s[t] = s[t] || []).push(c);
		return s;
	}, [schemaRes.data]);
	const tables = useMemo(() => {
		const m = new Map();
		if (schemaRes.data) for (const [type, t, c, ct] of schemaRes.data.rows) {
			if (!m.has(t)) m.set(t, { type, cols: [] });
			m.get(t).cols.push([c, ct]);
		}
		return [...m.entries()];
	}, [schemaRes.data]);
	const run = async () => {
		const q = textRef.current;
		setRunning(true);
		setErr(null);
		setQuery('q', q);
		try {
			setRes(await api('/api/sql', { method: 'POST', body: { sql: q } }));
		} catch (e) {
			setErr(e.message);
			setRes(null);
		}
		setRunning(false);
	};
	const save = async (e) => {
		e.preventDefault();
		localStorage.setItem('glimpse.author', author);
		try {
			await api('/api/queries', { method: 'POST', body: { name, sql: textRef.current, author: author || null } });
			setSavedMsg(`Saved "${name}".`);
			saved.reload();
		} catch (x) {
			setSavedMsg(x.message);
		}
	};
	return (
		<section class="sql">
			<h1>SQL console</h1>
			<div class="sql-layout">
				<aside class="schema" aria-label="Schema">
					<h2>Schema</h2>
					{schemaRes.loading ? <Loading what="schema" /> : schemaRes.error ? <Failure error={schemaRes.error} /> : tables.map(([t, { type, cols }]) => (
						<details key={t}>
							<summary>
								<span class="mono">{t}</span> <span class="muted small">{type}</span>
							</summary>
							<ul>
								{cols.map(([c, ct]) => (
									<li key={c}>
										<button class="link mono" title="Insert the column's name" onClick={() => setText(textRef.current + (/\s$/.test(textRef.current) ? '' : ' ') + c)}>{c}</button> <span class="muted small">{ct}</span>
									</li>
								))}
							</ul>
						</details>
					))}
					<h2>Saved queries</h2>
					{saved.loading ? <Loading what="saved queries" /> : saved.error ? <Failure error={saved.error} what="Saved queries" /> : (
						<ul class="saved">
							{saved.data.queries.map((q) => (
								<li key={q.query_id}>
									<button class="link" onClick={() => setText(q.sql)}>{q.name}</button>
									<span class="muted small"> {q.author || 'anonymous'}, {new Date(q.updated / 1e6).toLocaleString()}</span>{' '}
									<button class="link small" aria-label={`Delete ${q.name}`} onClick={async () => { await api(`/api/queries/${q.query_id}`, { method: 'DELETE' }); saved.reload(); }}>delete</button>
								</li>
							))}
							{!saved.data.queries.length ? <li class="muted">None yet.</li> : null}
						</ul>
					)}
				</aside>
				<div class="sql-main">
					{schemaRes.loading ? null : <Editor initial={DEFAULT_SQL} textRef={textRef} setDocRef={setDocRef} onRun={run} schema={schema} dark={dark} />}
					<div class="row">
						<button class="primary" onClick={run} disabled={running}>
							{running ? 'Running…' : 'Run (Ctrl+Enter)'}
						</button>
						<a
							class="button"
							href="/api/sql?format=csv"
							download="glimpse-query.csv"
							onClick={(e) => {
								e.currentTarget.href = `/api/sql?format=csv&sql=${encodeURIComponent(textRef.current)}`;
							}}
						>
							Download CSV
						</a>
						<form class="row" onSubmit={save}>
							<input aria-label="Name to save the query as" placeholder="name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
							<input aria-label="Your name" placeholder="your name" value={author} onInput={(e) => setAuthor(e.currentTarget.value)} />
							<button type="submit">Save</button>
						</form>
						<span role="status" class="muted">{savedMsg}</span>
					</div>
					{err ? <div class="error" role="alert">{err}</div> : null}
					{res ? <Results res={res} /> : null}
				</div>
			</div>
		</section>
	);
}
