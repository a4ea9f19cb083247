// A real S3-compatible server of the test's own (s3rver, from npm) on a free loopback port, in a
// child process with its own directory and one bucket. s3rver enforces a presigned link's expiry
// (X-Amz-Expires) but does not check V4 signatures' contents, and implements neither
// ListMultipartUploads nor AbortMultipartUpload.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { reapWithThisProcess } from './reaper.js';
import { freePort } from './redis-server.js';

export const TEST_BUCKET = 'parley-test';

export interface TestS3 {
  endpoint: string;
  bucket: string;
  /** The environment that points Parley at it. */
  env: Record<string, string>;
  /** Names of the objects in the bucket (s3rver keeps them as files in its directory). */
  objectKeys(): Promise<string[]>;
  /**
   * Multipart uploads begun and neither completed nor aborted, with how many parts s3rver holds
   * of each (read from its directory: it does not answer ListMultipartUploads).
   */
  incompleteUploads(): Promise<Array<{ key: string; parts: number }>>;
  dispose(): Promise<void>;
}

export async function startTestS3(): Promise<TestS3> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'parley-s3-'));
  const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      bin,
      '-d',
      dir,
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
      '-s',
      '--configure-bucket',
      TEST_BUCKET,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  reapWithThisProcess(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const endpoint = `http://127.0.0.1:${port}`;
  await waitForServer(endpoint, child, () => stderr);
  return {
    endpoint,
    bucket: TEST_BUCKET,
    env: {
      STORAGE: 's3',
      S3_BUCKET: TEST_BUCKET,
      S3_ENDPOINT: endpoint,
      S3_REGION: 'us-east-1',
      // s3rver's built-in account.
      S3_ACCESS_KEY_ID: 'S3RVER',
      S3_SECRET_ACCESS_KEY: 'S3RVER',
      S3_FORCE_PATH_STYLE: 'true',
    },
    objectKeys: async () => {
      const response = await fetch(`${endpoint}/${TEST_BUCKET}?list-type=2`);
      const xml = await response.text();
      return [...xml.matchAll(/<Key>([^<]+)<\/Key>/g)].map((m) => m[1]!);
    },
    incompleteUploads: async () => {
      // s3rver's layout: <dir>/<bucket>/._S3rver_uploads/<uploadId>/{key, metadata, 1, 2, …}.
      const uploads = path.join(dir, TEST_BUCKET, '._S3rver_uploads');
      const ids = await readdir(uploads).catch(() => [] as string[]);
      const found: Array<{ key: string; parts: number }> = [];
      for (const id of ids) {
        const files = await readdir(path.join(uploads, id)).catch(() => [] as string[]);
        const key = await readFile(path.join(uploads, id, 'key'), 'utf8').catch(() => undefined);
        if (key !== undefined)
          found.push({ key, parts: files.filter((f) => /^\d+$/.test(f)).length });
      }
      return found;
    },
    dispose: async () => {
      if (child.exitCode === null) {
        await new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        });
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForServer(
  endpoint: string,
  child: ChildProcess,
  stderr: () => string,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`s3rver exited: ${stderr()}`);
    try {
      const response = await fetch(`${endpoint}/${TEST_BUCKET}?list-type=2`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`s3rver did not start: ${stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Files anywhere under a directory (for "nothing left on disk" checks). */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}
