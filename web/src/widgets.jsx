// widgets.jsx - the UI's building blocks: a virtualized list, an icicle flame graph
// on a canvas, a uPlot chart, a variable's value as an expandable tree, and states.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';

// Only the rows in view (plus a margin) are in the DOM, so 100k rows scroll freely.
// rowHeight is fixed; renderRow(item, index, selected) returns the row's cells.
// Arrow keys, Home/End and PageUp/PageDown move the selection; Enter opens it.
export function VirtualList({ items, rowHeight = 28, renderRow, selected, onSelect, onOpen, label, header, height }) {
	const box = useRef(null);
	const [top, setTop] = useState(0);
	const [h, setH] = useState(400);
	useLayoutEffect(() => {
		const el = box.current;
		if (!el) return undefined;
		const ro = new ResizeObserver(() => setH(el.clientHeight));
		ro.observe(el);
		setH(el.clientHeight);
		return () => ro.disconnect();
	}, []);
	useEffect(() => {
		const el = box.current;
		if (!el || selected == null || selected < 0) return;
		const y = selected * rowHeight;
		const head = 28;
		if (y < el.scrollTop) el.scrollTop = y;
		else if (y + head + rowHeight > el.scrollTop + el.clientHeight) el.scrollTop = y + head + rowHeight - el.clientHeight;
	}, [selected]);
	const first = Math.max(0, Math.floor(top / rowHeight) - 10);
	const last = Math.min(items.length, Math.ceil((top + h) / rowHeight) + 10);
	const rows = [];
	for (let i = first; i < last; i++)
		rows.push(
			<div
				key={i}
				role="row"
				aria-rowindex={i + 2}
				aria-selected={i === selected ? 'true' : 'false'}
				class={'vrow' + (i === selected ? ' selected' : '')}
				style={{ top: `${i * rowHeight}px`, height: `${rowHeight}px` }}
				onClick={() => onSelect && onSelect(i)}
				onDblClick={() => onOpen && onOpen(i)}
			>
				{renderRow(items[i], i, i === selected)}
			</div>,
		);
	const key = (e) => {
		if (!onSelect || !items.length) return;
		const page = Math.max(1, Math.floor(h / rowHeight) - 1);
		const cur = selected == null ? -1 : selected;
		const moves = { ArrowDown: cur + 1, ArrowUp: cur - 1, j: cur + 1, k: cur - 1, Home: 0, End: items.length - 1, PageDown: cur + page, PageUp: cur - page };
		if (e.key in moves) {
			e.preventDefault();
			onSelect(Math.max(0, Math.min(items.length - 1, moves[e.key])));
		} else if (e.key === 'Enter' && onOpen && cur >= 0) {
			e.preventDefault();
			onOpen(cur);
		}
	};
	return (
		<div class="vlist">
			<div
				class="vbody"
				role="grid"
				aria-label={label}
				aria-rowcount={items.length + 1}
				ref={box}
				tabIndex={0}
				style={height ? { height: `${height}px` } : undefined}
				onScroll={(e) => setTop(e.currentTarget.scrollTop)}
				onKeyDown={key}
			>
				<div role="rowgroup" class="vhead-group">
					{header}
				</div>
				<div role="rowgroup" style={{ height: `${items.length * rowHeight}px`, position: 'relative' }}>
					{rows}
				</div>
			</div>
		</div>
	);
}

// Builds the icicle's tree from stacks: [{frames: [outermost..innermost names], count}].
export function buildTree(stacks) {
	const root = { name: 'all', value: 0, children: new Map() };
	for (const s of stacks) {
		root.value += s.count;
		let n = root;
		for (const f of s.frames) {
			let c = n.children.get(f);
			if (!c) n.children.set(f, (c = { name: f, value: 0, children: new Map() }));
			c.value += s.count;
			n = c;
		}
	}
	return root;
}

function hue(name) {
	let h = 0;
	for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) | 0;
	return Math.abs(h);
}

// An icicle of all goroutine stacks (root at the top, callees below); the width of a
// box is its number of goroutines. Clicking a box calls onPick(function name); the
// focused box fills the width. Drawn on a canvas: cheap at any size.
export function Flame({ tree, onPick, picked, dark }) {
	const canvas = useRef(null);
	const boxes = useRef([]);
	const [hover, setHover] = useState(null);
	const [width, setWidth] = useState(800);
	const rowH = 18;
	let depth = 0;
	const walk = (n, d) => {
		depth = Math.max(depth, d);
		for (const c of n.children.values()) walk(c, d + 1);
	};
	walk(tree, 0);
	const height = Math.min(depth + 1, 40) * rowH;
	useLayoutEffect(() => {
		const el = canvas.current.parentElement;
		const ro = new ResizeObserver(() => setWidth(el.clientWidth));
		ro.observe(el);
		setWidth(el.clientWidth);
		return () => ro.disconnect();
	}, []);
	useEffect(() => {
		const c = canvas.current;
		const dpr = window.devicePixelRatio || 1;
		c.width = width * dpr;
		c.height = height * dpr;
		const g = c.getContext('2d');
		g.scale(dpr, dpr);
		g.clearRect(0, 0, width, height);
		g.font = '11px system-ui, sans-serif';
		g.textBaseline = 'middle';
		const out = [];
		const draw = (n, x, w, d) => {
			if (w < 0.5 || d >= 40) return;
			const y = d * rowH;
			const isPicked = picked && n.name === picked;
			const hh = hue(n.name) % 60;
			g.fillStyle = isPicked ? (dark ? '#d6a400' : '#f2c200') : dark ? `hsl(${200 + hh},40%,${30 + (hh % 12)}%)` : `hsl(${20 + hh},85%,${68 + (hh % 14)}%)`;
			g.fillRect(x, y, w - 1, rowH - 1);
			if (w > 30) {
				g.fillStyle = dark ? '#eee' : '#111';
				const label = `${n.name} (${n.value})`;
				const maxChars = Math.floor((w - 6) / 6);
				g.fillText(label.length > maxChars ? label.slice(0, Math.max(0, maxChars - 1)) + '…' : label, x + 3, y + rowH / 2);
			}
			out.push({ x, y, w, n });
			let cx = x;
			const kids = [...n.children.values()].sort((a, b) => b.value - a.value);
			for (const k of kids) {
				const kw = (k.value / n.value) * w;
				draw(k, cx, kw, d + 1);
				cx += kw;
			}
		};
		draw(tree, 0, width, 0);
		boxes.current = out;
	}, [tree, width, height, picked, dark]);
	const at = (e) => {
		const r = canvas.current.getBoundingClientRect();
		const x = e.clientX - r.left;
		const y = e.clientY - r.top;
		return boxes.current.find((b) => x >= b.x && x < b.x + b.w && y >= b.y && y < b.y + rowH);
	};
	return (
		<div class="flame">
			<div class="flame-scroll" tabIndex={0} aria-label="Flame graph, scrollable">
			<canvas
				ref={canvas}
				style={{ width: `${width}px`, height: `${height}px` }}
				role="img"
				aria-label="Flame graph (icicle) of all goroutine stacks; click a function to filter by it"
				onMouseMove={(e) => {
					const b = at(e);
					setHover(b ? `${b.n.name}: ${b.n.value} goroutine${b.n.value === 1 ? '' : 's'}` : null);
				}}
				onMouseLeave={() => setHover(null)}
				onClick={(e) => {
					const b = at(e);
					if (b && onPick) onPick(b.n.name === 'all' ? '' : b.n.name);
				}}
			/>
			</div>
			<div class="flame-tip" aria-live="polite">{hover || 'Click a function to filter the groups by it; click "all" to clear.'}</div>
		</div>
	);
}

// A uPlot chart. series: [{label, values}], x: numbers; bars draws a histogram.
export function Chart({ x, series, title, bars, height = 220, xTime, xLabel, xFmt, xLabels }) {
	const el = useRef(null);
	useEffect(() => {
		const node = el.current;
		const w = node.clientWidth || 600;
		const palette = ['#2b7bb9', '#d95f02', '#1b9e77', '#7570b3', '#e7298a', '#66a61e'];
		const opts = {
			width: w,
			height,
			title,
			scales: { x: xLabels ? { time: false, range: [-0.5, xLabels.length - 0.5] } : { time: !!xTime } },
			axes: [
				{
					stroke: 'currentColor',
					grid: { stroke: '#8884' },
					values: xLabels ? (u, splits) => splits.map((v) => (Number.isInteger(v) ? xLabels[v] : '')) : xFmt ? (u, splits) => splits.map(xFmt) : undefined,
					incrs: xFmt || xLabels ? [1] : undefined,
				},
				{ stroke: 'currentColor', grid: { stroke: '#8884' } },
			],
			series: [
				{ label: xLabel || 'x' },
				...series.map((s, i) => ({
					label: s.label,
					stroke: palette[i % palette.length],
					fill: bars ? palette[i % palette.length] + '99' : undefined,
					width: bars ? 0 : 2,
					paths: bars ? uPlot.paths.bars({ size: [0.9, 60] }) : undefined,
					points: { show: !bars && x.length < 60 },
				})),
			],
		};
		const u = new uPlot(opts, [x, ...series.map((s) => s.values)], node);
		const ro = new ResizeObserver(() => u.setSize({ width: node.clientWidth || w, height }));
		ro.observe(node);
		return () => {
			ro.disconnect();
			u.destroy();
		};
	}, [x, series, title, bars, height, xLabels]);
	return <div class="chart" ref={el} role="img" aria-label={title || 'chart'} />;
}

// A decoded Go value (the JSON glimpse stores) as an expandable tree.
export function Value({ name, v, type, truncated, depth = 0 }) {
	const [open, setOpen] = useState(depth < 1);
	const compound = v !== null && typeof v === 'object';
	const mark = truncated ? <span class="badge warn" title="the value was cut at a limit (max_string, max_entries or max_depth)">truncated</span> : null;
	if (!compound) {
		let cls = 'v-' + (v === null ? 'null' : typeof v);
		// null is nil for the types that have one; for the others the value was not
		// there to read (optimized away, not live at this pc).
		const nilable = !type || /^(\*|\[\]|map\[|chan |func|interface|error$|any$|unsafe\.Pointer)/.test(type);
		if (v === null && !nilable)
			return (
				<div class="vt-leaf" role="treeitem">
					<span class="vt-name">{name}</span> <span class="vt-type">{type}</span> <span class="badge">unavailable</span>
				</div>
			);
		let text = v === null ? 'nil' : typeof v === 'string' ? JSON.stringify(v) : String(v);
		return (
			<div class="vt-leaf" role="treeitem">
				<span class="vt-name">{name}</span> {type ? <span class="vt-type">{type}</span> : null} = <span class={cls}>{text}</span> {mark}
			</div>
		);
	}
	const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v);
	const special = !Array.isArray(v) && (v['<unavailable>'] !== undefined || v.unavailable !== undefined);
	return (
		<div class="vt-node" role="treeitem" aria-expanded={open ? 'true' : 'false'}>
			<button class="vt-toggle" aria-label={`${open ? 'Collapse' : 'Expand'} ${name}`} onClick={() => setOpen(!open)}>
				{open ? '▾' : '▸'}
			</button>
			<span class="vt-name">{name}</span> {type ? <span class="vt-type">{type}</span> : null}{' '}
			<span class="vt-sum">{Array.isArray(v) ? `[${v.length}]` : `{${entries.length}}`}</span> {mark}
			{special ? <span class="badge">unavailable</span> : null}
			{open ? (
				<div class="vt-kids" role="group">
					{entries.slice(0, 500).map(([k, x]) => (
						<Value key={k} name={k} v={x} depth={depth + 1} />
					))}
					{entries.length > 500 ? <div class="muted">… {entries.length - 500} more</div> : null}
				</div>
			) : null}
		</div>
	);
}

export function Loading({ what }) {
	return (
		<p class="muted" role="status">
			Loading {what}…
		</p>
	);
}

// An error, or for 404s of routes this server lacks, a "not available" note.
export function Failure({ error, what }) {
	if (error && error.status === 404 && what)
		return (
			<div class="notice" role="status">
				<strong>{what} is not available</strong> on this server (its API answered 404: {error.message}).
			</div>
		);
	return (
		<div class="error" role="alert">
			{error ? error.message : 'failed'}
		</div>
	);
}
