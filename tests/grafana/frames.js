// frames.js BASE_URL TOKEN DASHBOARD_DIR FROM_MS TO_MS PID
//
// Reads glimpse serve's /api/sql answers the way Grafana does: every Infinity query of every
// dashboard under DASHBOARD_DIR is sent as Grafana would send it (its macros replaced), and the
// answer is turned into a data frame by @grafana/data (toDataFrame for format=objects, readCSV
// for format=csv). Prints one JSON line per query: the dashboard, the panel, the frame's fields
// with their Grafana types, and its row count; exits non-zero on a failed request.
'use strict';
const fs = require('fs');
const path = require('path');
const { toDataFrame, readCSV, FieldType } = require('@grafana/data');

const [base, token, dir, from, to, pid] = process.argv.slice(2);

function expand(text, vars) {
	return text.replace(/\$\{(\w+)(?::\w+)?\}|\$(\w+)/g, (m, a, b) => {
		const k = a || b;
		return k in vars ? String(vars[k]) : m;
	});
}

async function query(target, vars, format) {
	const opts = target.url_options || {};
	const url = new URL(target.url.replace(/^https?:\/\/[^/]+/, base));
	for (const p of opts.params || []) url.searchParams.set(p.key, expand(p.value, vars));
	url.searchParams.set('format', format);
	const init = { method: opts.method || 'GET', headers: { Authorization: `Bearer ${token}` } };
	if (init.method === 'POST') {
		init.body = expand(opts.data || '', vars);
		init.headers['Content-Type'] = opts.body_content_type || 'application/json';
	}
	const r = await fetch(url, init);
	const text = await r.text();
	if (r.status !== 200) throw new Error(`${r.status} ${text.slice(0, 300)}`);
	return text;
}

function describe(frame) {
	return frame.fields.map((f) => ({ name: f.name, type: f.type }));
}

async function main() {
	const vars = { __from: from, __to: to, pid, __interval_ms: 60000, __interval: '1m' };
	let failed = 0;
	for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
		const dash = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
		const targets = [];
		for (const panel of dash.panels || [])
			for (const t of panel.targets || []) targets.push([panel.title, t]);
		for (const v of (dash.templating && dash.templating.list) || [])
			if (v.query && v.query.infinityQuery) targets.push([`variable ${v.name}`, v.query.infinityQuery]);
		for (const [title, t] of targets) {
			if (!t.url || t.datasource?.type !== 'yesoreyeram-infinity-datasource') continue;
			try {
				const objects = JSON.parse(await query(t, vars, 'objects'));
				const frame = toDataFrame(objects);
				const csvFrames = readCSV(await query(t, vars, 'csv'));
				const csvFrame = csvFrames[0] || { fields: [], length: 0 };
				console.log(JSON.stringify({
					dashboard: file, panel: title, rows: frame.length, fields: describe(frame),
					csv_rows: csvFrame.length, csv_fields: describe(csvFrame),
					time_field: frame.fields.some((f) => f.type === FieldType.time),
				}));
			} catch (e) {
				failed++;
				console.log(JSON.stringify({ dashboard: file, panel: title, error: String(e.message || e) }));
			}
		}
	}
	process.exit(failed ? 1 : 0);
}

main();
