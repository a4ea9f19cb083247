// Transpiles src/ to dist/ file by file (no bundling, no type check: `npm run typecheck` does that)
// and copies the SQL migrations beside the code that applies them. Takes well under a second,
// which is why `npm start` can afford to run it every time.
import { build } from 'esbuild';
import { cp, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

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
