// browser.mjs - what the UI's browser tests and benchmark share: Debian's chromium
// driven by playwright-core (no browser download), console errors collected, axe-core
// run on a page, and screenshots saved.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const axeSource = require('axe-core').source;

export async function launch() {
	return chromium.launch({
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		args: [
			'--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync',
		],
	});
}

// A page at 1280x800 whose console errors and uncaught exceptions are kept in errors[].
export async function newPage(browser, opts = {}) {
	const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true, colorScheme: opts.colorScheme || 'light' });
	const page = await context.newPage();
	const errors = [];
	// Routes other branches add (/api/processes, /api/recordings) may answer 404 on
	// this server: the UI shows "not available", but chromium still logs the 404. Only
	// those are forgiven, one console line per such answer.
	let optional404 = 0;
	page.on('response', (r) => {
		if (r.status() === 404 && /\/api\/(processes|recordings)(\?|$)/.test(new URL(r.url()).pathname + (new URL(r.url()).search ? '?' : '')))
			optional404++;
	});
	page.on('console', (m) => {
		if (m.type() !== 'error') return;
		if (optional404 > 0 && /status of 404/.test(m.text())) {
			optional404--;
			return;
		}
		errors.push(`console: ${m.text()} (${page.url()})`);
	});
	page.on('pageerror', (e) => errors.push(`exception: ${e.message} (${page.url()})`));
	return { context, page, errors };
}

// Runs axe-core on the page; returns the serious and critical violations. axe is
// evaluated through the DevTools protocol, so the page's CSP stays as it is.
export async function axe(page) {
	await page.evaluate(axeSource);
	const r = await page.evaluate(async () => {
		const res = await window.axe.run(document, { resultTypes: ['violations'] });
		return res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => {
			// What axe measured (colours and ratio for contrast) and the text, so a
			// failure in CI says which element and which colours without a rerun.
			const d = (n.any[0] || n.all[0] || n.none[0] || {}).data;
			const el = document.querySelector(n.target.join(' '));
			return { target: n.target.join(' '), text: el ? el.textContent.slice(0, 60) : null, data: d || null };
		}) }));
	});
	return r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export function shots(dir) {
	mkdirSync(dir, { recursive: true });
	return async (page, name) => {
		const p = join(dir, `${name}.png`);
		await page.screenshot({ path: p });
		return p;
	};
}
