// build.mjs OUTDIR - bundles the web UI (src/main.jsx, src/style.css) with esbuild into
// OUTDIR: assets/ with content hashes in their names, index.html naming them, and a
// gzip copy of each text file. make runs it; the result is embedded in glimpse.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
	console.error('usage: node web/build.mjs OUTDIR');
	process.exit(2);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });

const result = await build({
	entryPoints: [join(here, 'src/main.jsx'), join(here, 'src/style.css')],
	bundle: true,
	minify: true,
	format: 'esm',
	target: ['chrome110', 'firefox110', 'safari16'],
	jsx: 'automatic',
	jsxImportSource: 'preact',
	outdir: join(out, 'assets'),
	entryNames: '[name]-[hash]',
	metafile: true,
	legalComments: 'none',
	logLevel: 'warning',
});
const names = Object.keys(result.metafile.outputs).map((p) => basename(p));
const js = names.find((n) => n.endsWith('.js'));
const css = names.filter((n) => n.endsWith('.css'));
const html = readFileSync(join(here, 'src/index.html'), 'utf8')
	.replace('<!--css-->', css.map((n) => `<link rel="stylesheet" href="/assets/${n}">`).join(''))
	.replace('<!--js-->', `<script type="module" src="/assets/${js}"></script>`);
writeFileSync(join(out, 'index.html'), html);
writeFileSync(join(out, 'favicon.svg'), readFileSync(join(here, 'src/favicon.svg')));
// index.html is never sent compressed: the server puts a fresh nonce in it.
for (const f of ['favicon.svg', ...names.map((n) => 'assets/' + n)]) {
	const data = readFileSync(join(out, f));
	if (data.length > 1024)
		writeFileSync(join(out, f + '.gz'), gzipSync(data, { level: 9 }));
}
const total = readdirSync(join(out, 'assets')).length;
console.log(`web: ${js} and ${css.length} stylesheet(s) in ${out} (${total} asset files)`);
