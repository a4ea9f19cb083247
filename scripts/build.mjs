// Transpiles src/ to dist/ file by file (no bundling, no type check: `npm run typecheck` does that)
// and copies the SQL migrations beside the code that applies them; bundles the web client (web/)
// into dist/web, minified, with its gzipped size printed. Takes well under a second, which is why
// `npm start` can afford to run it every time.
import { build } from 'esbuild';
import { cp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const root = path.resolve(import.meta.dirname, '..');
const src = path.join(root, 'src');
// Another output directory may be named (the cluster tests build their own copy: test runs
// rebuild dist/ while those processes start from theirs).
const out = path.resolve(root, process.argv[2] ?? 'dist');

async function listTs(dir) {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

await rm(out, { recursive: true, force: true });
await build({
  entryPoints: await listTs(src),
  outdir: out,
  outbase: src,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
});
await cp(path.join(src, 'db', 'migrations'), path.join(out, 'db', 'migrations'), {
  recursive: true,
});

// The web client: one script and one stylesheet, no other origin (SPEC §9).
const webOut = path.join(out, 'web');
const started = performance.now();
await build({
  entryPoints: [path.join(root, 'web', 'main.ts'), path.join(root, 'web', 'style.css')],
  outdir: webOut,
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
await cp(path.join(root, 'web', 'index.html'), path.join(webOut, 'index.html'));
if (process.env.PARLEY_BUILD_QUIET !== '1') {
  let gzipped = 0;
  for (const file of ['main.js', 'style.css'])
    gzipped += gzipSync(await readFile(path.join(webOut, file)), { level: 9 }).length;
  process.stdout.write(
    `web client: dist/web built in ${Math.round(performance.now() - started)} ms, ` +
      `JS + CSS ${(gzipped / 1024).toFixed(1)} KB gzipped\n`,
  );
}
