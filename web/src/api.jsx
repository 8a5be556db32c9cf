// api.js - talking to glimpse serve: JSON requests with the token cookie, errors as
// exceptions carrying the HTTP status, and a tiny client-side router.
import { useEffect, useState } from 'preact/hooks';

export class ApiError extends Error {
	constructor(status, message) {
		super(message);
		this.status = status;
	}
}

// Requests path; returns the parsed JSON answer or throws ApiError.
export async function api(path, opts = {}) {
	const init = { method: opts.method || 'GET', headers: { Accept: 'application/json' }, credentials: 'same-origin' };
	if (opts.body !== undefined) {
		init.body = JSON.stringify(opts.body);
		init.headers['Content-Type'] = 'application/json';
	}
	const r = await fetch(path, init);
	const text = await r.text();
	let data = null;
	try {
		data = text ? JSON.parse(text) : null;
	} catch {
		data = null;
	}
	if (!r.ok) throw new ApiError(r.status, (data && data.error) || `${r.status} ${r.statusText}`);
	return data;
}

// A hook: loads path (when not null) and gives {data, error, loading, reload}.
export function useApi(path, deps = []) {
	const [state, setState] = useState({ data: null, error: null, loading: !!path });
	const [n, setN] = useState(0);
	useEffect(() => {
		if (!path) return undefined;
		let live = true;
		setState((s) => ({ ...s, loading: true, error: null }));
		api(path).then(
			(data) => live && setState({ data, error: null, loading: false }),
			(error) => live && setState({ data: null, error, loading: false }),
		);
		return () => {
			live = false;
		};
	}, [path, n, ...deps]);
	return { ...state, reload: () => setN((x) => x + 1) };
}

// The SQL endpoint: rows as objects.
export async function sql(query, params) {
	return api('/api/sql', { method: 'POST', body: { sql: query, params: params || {}, format: 'objects' } });
}

// ---- routing: every view has its own URL ----
const listeners = new Set();

export function navigate(to, replace = false) {
	if (to === location.pathname + location.search) return;
	history[replace ? 'replaceState' : 'pushState'](null, '', to);
	listeners.forEach((f) => f());
}

export function useLocation() {
	const [loc, setLoc] = useState(location.pathname + location.search);
	useEffect(() => {
		const f = () => setLoc(location.pathname + location.search);
		listeners.add(f);
		addEventListener('popstate', f);
		return () => {
			listeners.delete(f);
			removeEventListener('popstate', f);
		};
	}, []);
	return loc;
}

// Sets one query argument of the current URL without a new history entry.
export function setQuery(key, value) {
	const u = new URL(location.href);
	if (value === '' || value == null) u.searchParams.delete(key);
	else u.searchParams.set(key, value);
	history.replaceState(null, '', u.pathname + u.search);
}

export function query(key) {
	return new URL(location.href).searchParams.get(key) || '';
}

// A link that navigates inside the page.
export function Link({ href, children, ...rest }) {
	return (
		<a
			href={href}
			{...rest}
			onClick={(e) => {
				if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
				e.preventDefault();
				navigate(href);
			}}
		>
			{children}
		</a>
	);
}

// ---- formatting ----
export function fmtTime(ns) {
	if (!ns) return '';
	const d = new Date(ns / 1e6);
	return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function fmtDur(ns) {
	if (ns == null) return '';
	if (ns < 1e3) return `${ns} ns`;
	if (ns < 1e6) return `${(ns / 1e3).toFixed(1)} µs`;
	if (ns < 1e9) return `${(ns / 1e6).toFixed(1)} ms`;
	return `${(ns / 1e9).toFixed(2)} s`;
}

export function fmtWait(ms) {
	if (ms == null || ms < 0) return '';
	if (ms < 1000) return `${ms} ms`;
	if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
	return `${Math.round(ms / 60000)} min`;
}

export function fmtBytes(n) {
	if (n == null) return '';
	if (n < 1024) return `${n} B`;
	if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
	if (n < 1 << 30) return `${(n / (1 << 20)).toFixed(1)} MiB`;
	return `${(n / (1 << 30)).toFixed(2)} GiB`;
}

export function shortFile(f) {
	if (!f) return '';
	const parts = f.split('/');
	return parts.slice(-2).join('/');
}
