// bench.mjs - the web UI's speed on a big snapshot (scripts/bench-ui.sh runs it), in
// Debian's chromium: from navigation to the grouped view being shown, and from typing
// a filter to the filtered view; and the bytes the page transferred. Prints JSON.
//
// Environment: GLIMPSE_URL (serve's URL with ?token=), SNAPSHOT (its id), FILTER (the
// text typed), RUNS (default 5).
import { launch, newPage } from './browser.mjs';

const url = new URL(process.env.GLIMPSE_URL);
const id = process.env.SNAPSHOT;
const filter = process.env.FILTER || 'main.sleeper';
const runs = Number(process.env.RUNS || 5);
const browser = await launch();
const out = { navigation_ms: [], filter_ms: [], transferred_bytes: [], groups: 0, goroutines: 0 };
for (let i = 0; i < runs; i++) {
	const { page, context, errors } = await newPage(browser);
	await page.goto(url.href); // the cookie
	await page.getByRole('heading', { name: 'Processes', exact: true }).waitFor();
	const cdp = await context.newCDPSession(page);
	await cdp.send('Network.enable');
	await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
	let bytes = 0;
	cdp.on('Network.loadingFinished', (e) => (bytes += e.encodedDataLength));
	const t0 = Date.now();
	await page.goto(`${url.origin}/snapshots/${id}`);
	await page.locator('.vrow').first().waitFor({ timeout: 120000 });
	// shown: the rows painted
	await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
	out.navigation_ms.push(Date.now() - t0);
	out.transferred_bytes.push(bytes);
	out.goroutines = Number(await page.getByTestId('shown-count').textContent());
	out.groups = Number((await page.locator('.states').textContent()).match(/in (\d+) groups/)[1]);
	const box = page.getByLabel(/Filter by function or file/);
	const before = await page.getByTestId('shown-count').textContent();
	// Time from the input event to the next paint with the new count, measured in the page.
	const ms = await page.evaluate(
		({ text, before }) =>
			new Promise((resolve) => {
				const el = document.querySelector('input[type=search]');
				const t = performance.now();
				el.value = text;
				el.dispatchEvent(new Event('input', { bubbles: true }));
				const wait = () => {
					if (document.querySelector('[data-testid=shown-count]').textContent !== before)
						requestAnimationFrame(() => resolve(performance.now() - t));
					else requestAnimationFrame(wait);
				};
				requestAnimationFrame(wait);
			}),
		{ text: filter, before },
	);
	out.filter_ms.push(Math.round(ms));
	await box.waitFor();
	if (errors.length) throw new Error(errors.join('\n'));
	await context.close();
}
await browser.close();
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
out.median = { navigation_ms: med(out.navigation_ms), filter_ms: med(out.filter_ms), transferred_bytes: med(out.transferred_bytes) };
console.log(JSON.stringify(out));
