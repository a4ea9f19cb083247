// An S3-compatible server of the benchmark's own (s3rver, the one the tests use) on a free port,
// with one bucket in a temporary directory; killed, and its directory removed, with the benchmark.
import { S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, ownChild } from './bench-processes.js';

const BUCKET = 'parley-bench';

export interface BenchS3 {
  endpoint: string;
  bucket: string;
  pid: number;
  /** The directory s3rver keeps its objects in (on the same disk as tmpdir()). */
  dir: string;
  /** The environment that points Parley at it. */
  env: Record<string, string>;
  /** A client configured as the app's S3Storage configures its own. */
  client(): S3Client;
  stop(): Promise<void>;
}

export async function startBenchS3(): Promise<BenchS3> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-bench-s3-'));
  const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  const child = spawn(
    process.execPath,
    [bin, '-d', dir, '-a', '127.0.0.1', '-p', String(port), '-s', '--configure-bucket', BUCKET],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  ownChild(child, () => rmSync(dir, { recursive: true, force: true }));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`s3rver exited: ${stderr}`);
    try {
      if ((await fetch(`${endpoint}/${BUCKET}?list-type=2`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 150) throw new Error(`s3rver did not start: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const env = {
    STORAGE: 's3',
    S3_BUCKET: BUCKET,
    S3_ENDPOINT: endpoint,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'S3RVER', // s3rver's built-in account
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    S3_FORCE_PATH_STYLE: 'true',
  };
  return {
    endpoint,
    bucket: BUCKET,
    pid: child.pid!,
    dir,
    env,
    client: () =>
      new S3Client({
        region: env.S3_REGION,
        endpoint,
        forcePathStyle: true,
        credentials: {
          accessKeyId: env.S3_ACCESS_KEY_ID,
          secretAccessKey: env.S3_SECRET_ACCESS_KEY,
        },
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
