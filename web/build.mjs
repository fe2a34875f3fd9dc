// Builds the dashboard into dist/: one bundled, minified app.js (Chart.js included), the
// stylesheet, the icon, and index.html with each asset's content hash in its URL (the
// server caches /assets/* for good). The output is deterministic, so a rebuild of unchanged
// sources leaves dist/ byte-identical (scripts/dashboard-e2e checks that).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';

const here = new URL('.', import.meta.url).pathname;
const src = (f) => `${here}src/${f}`;
const dist = (f) => `${here}dist/${f}`;
mkdirSync(dist(''), { recursive: true });

await build({
  entryPoints: [src('main.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  legalComments: 'eof',
  outfile: dist('app.js'),
  logLevel: 'warning',
});
copyFileSync(src('app.css'), dist('app.css'));
copyFileSync(src('favicon.svg'), dist('favicon.svg'));

const hash = (f) => createHash('sha256').update(readFileSync(dist(f))).digest('hex').slice(0, 16);
const html = readFileSync(src('index.html'), 'utf8')
  .replace('%JS_HASH%', hash('app.js'))
  .replace('%CSS_HASH%', hash('app.css'))
  .replace('%FAVICON_HASH%', hash('favicon.svg'));
writeFileSync(dist('index.html'), html);
console.log('built dist/: index.html, app.js, app.css, favicon.svg');
