// Transpiles src/ to dist/ file by file (no bundling, no type check: `npm run typecheck` does that)
// and copies the SQL migrations beside the code that applies them; bundles the web client (web/)
// into dist/web, minified, with its gzipped size printed. Takes well under a second, which is why
// `npm start` can afford to run it every time.
//
// With --types (`npm run build`), also emits the declaration files of what package.json exports
// (`parley/client`, `parley/realtime/events`) into dist/types, so a consumer type-checks against
// .d.ts files rather than compiling our sources under its own tsconfig. That is tsc (seconds, not
// milliseconds), run beside esbuild; `npm start` leaves it out and keeps the last dist/types.
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { cp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const root = path.resolve(import.meta.dirname, '..');
const src = path.join(root, 'src');
const args = process.argv.slice(2);
const withTypes = args.includes('--types');
// Another output directory may be named (the cluster tests build their own copy: test runs
// rebuild dist/ while those processes start from theirs).
const out = path.resolve(root, args.find((arg) => !arg.startsWith('--')) ?? 'dist');
const typesDir = 'types';

/** tsc on scripts/tsconfig.client-types.json, declarations only, into dist/types. */
function emitTypes() {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const project = path.join(root, 'scripts', 'tsconfig.client-types.json');
  const args = [tsc, '-p', project, '--outDir', path.join(out, typesDir)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`tsc (declarations) exited with ${code}`)),
    );
  });
}

async function clean() {
  if (withTypes) return rm(out, { recursive: true, force: true });
  // Everything but the declarations, which only --types rewrites.
  const entries = await readdir(out).catch(() => []);
  await Promise.all(
    entries
      .filter((name) => name !== typesDir)
      .map((name) => rm(path.join(out, name), { recursive: true, force: true })),
  );
}

await clean();
const types = withTypes ? emitTypes() : undefined;

async function listTs(dir) {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

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
if (types) {
  const waited = performance.now();
  await types;
  if (process.env.PARLEY_BUILD_QUIET !== '1')
    process.stdout.write(
      `declarations: dist/${typesDir} (waited ${Math.round(performance.now() - waited)} ms for tsc)\n`,
    );
}
