// main.jsx - glimpse's web UI: the layout (navigation, theme), the routes (each view
// has its own URL) and keyboard shortcuts. Served by `glimpse serve` at /.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { useLocation, navigate, Link } from './api.jsx';
import { Processes, Process } from './processes.jsx';
import { Snapshot, Compare } from './snapshot.jsx';
import { Traces, NewTrace, Trace } from './traces.jsx';
import { Sql } from './sql.jsx';
import { Recordings, Replay } from './recordings.jsx';
import { Debugger } from './debugger.jsx';

// The token came in the URL once (?token=): the server has set its cookie, so the
// token leaves the address bar (and the history) at once.
if (new URLSearchParams(location.search).has('token')) {
	const u = new URL(location.href);
	u.searchParams.delete('token');
	history.replaceState(null, '', u.pathname + u.search + u.hash);
}

function route(path, dark) {
	let m;
	if (path === '/' || path === '/processes') return <Processes />;
	if ((m = path.match(/^\/processes\/(\d+)$/))) return <Process pid={m[1]} />;
	if ((m = path.match(/^\/snapshots\/(\d+)\/compare\/(\d+)$/))) return <Compare a={m[1]} b={m[2]} />;
	if ((m = path.match(/^\/snapshots\/(\d+)$/))) return <Snapshot key={m[1]} id={m[1]} dark={dark} />;
	if (path === '/traces') return <Traces />;
	if (path === '/traces/new') return <NewTrace />;
	if ((m = path.match(/^\/traces\/(\d+)$/))) return <Trace key={m[1]} id={m[1]} />;
	if (path === '/sql') return <Sql dark={dark} />;
	if (path === '/recordings') return <Recordings />;
	if ((m = path.match(/^\/recordings\/(\d+)\/replay$/))) return <Replay id={m[1]} />;
	if ((m = path.match(/^\/recordings\/(\d+)\/debug$/))) return <Debugger key={m[1]} id={m[1]} />;
	return (
		<section>
			<h1>Not found</h1>
			<p>
				No view at <code>{path}</code>. <Link href="/">Processes</Link>
			</p>
		</section>
	);
}

const NAV = [
	['/', 'Processes', 'p'],
	['/traces', 'Traces', 't'],
	['/sql', 'SQL', 'q'],
	['/recordings', 'Recordings', 'r'],
];

function App() {
	const loc = useLocation();
	const path = loc.split('?')[0];
	const [theme, setTheme] = useState(localStorage.getItem('glimpse.theme') || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
	useEffect(() => {
		document.documentElement.dataset.theme = theme;
		localStorage.setItem('glimpse.theme', theme);
	}, [theme]);
	useEffect(() => {
		// g then a letter goes to a view (as in GitHub); ? lists the keys.
		let g = false;
		const key = (e) => {
			const t = e.target;
			if (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName) || e.ctrlKey || e.metaKey || e.altKey) return;
			if (g) {
				g = false;
				const n = NAV.find((x) => x[2] === e.key);
				if (n) navigate(n[0]);
				return;
			}
			if (e.key === 'g') g = true;
			else if (e.key === '?') alert('Keys:\n  g p  processes\n  g t  traces\n  g q  SQL\n  g r  recordings\n  /    filter (snapshot)\n  ↑ ↓ j k, Enter  move in lists, open\n  Ctrl+Enter  run the SQL');
		};
		addEventListener('keydown', key);
		return () => removeEventListener('keydown', key);
	}, []);
	useEffect(() => {
		const h = document.querySelector('main h1');
		document.title = h ? `${h.textContent} · glimpse` : 'glimpse';
	});
	const current = (href) => (href === '/' ? path === '/' || path.startsWith('/processes') || path.startsWith('/snapshots') : path.startsWith(href));
	return (
		<div class="app">
			<a class="skip" href="#main">
				Skip to content
			</a>
			<header class="top">
				<Link href="/" class="brand">
					glimpse
				</Link>
				<nav aria-label="Views">
					{NAV.map(([href, label, k]) => (
						<Link key={href} href={href} aria-current={current(href) ? 'page' : undefined} title={`g ${k}`}>
							{label}
						</Link>
					))}
				</nav>
				<button class="theme" aria-label={`Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`} onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}>
					{theme === 'dark' ? '☀ Light' : '☾ Dark'}
				</button>
			</header>
			<main id="main" tabIndex={-1}>
				{route(path, theme === 'dark')}
			</main>
		</div>
	);
}

render(<App />, document.getElementById('app'));
