// Builds dist/ once before the process tests, so a test run alone (`-t …`) never starts a
// stale server. `npm start` builds again itself; the build takes under a second.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function buildOnce(): void {
  const root = path.resolve(import.meta.dirname, '../..');
  execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: root, stdio: 'inherit' });
}
