// Builds the app once for the cluster tests, into a directory of their own (.cluster-dist):
// the process tests run `npm start`, which rebuilds dist/ while cluster processes start from it.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function buildForCluster(): void {
  const root = path.resolve(import.meta.dirname, '../..');
  execFileSync(process.execPath, ['scripts/build.mjs', '.cluster-dist'], {
    cwd: root,
    stdio: 'inherit',
  });
}
