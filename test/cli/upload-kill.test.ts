// Uploads cut off (SPEC §5, issue 10 acceptance 5): a client that goes away mid-body leaves no
// file and no row, and a server killed with SIGKILL mid-upload leaves nothing the cleanup job
// does not remove, on the local disk and on an S3-compatible store (s3rver). Real server
// processes from a build of this file's own; the database is then opened here to look inside.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer, request, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../src/db/client.js';
import { AttachmentRepository } from '../../src/repositories/attachment.repository.js';
import { AttachmentCleanup } from '../../src/services/attachment-cleanup.js';
import { LocalStorage } from '../../src/storage/local.storage.js';
import { S3Storage } from '../../src/storage/s3.storage.js';
import type { FileStorage } from '../../src/storage/storage.js';
import { createId } from '../../src/utils/ids.js';
import { buildUserInput, type AuthData } from '../factories.js';
import { ApiClient, type Envelope } from '../support/api-client.js';
import { png, upload } from '../support/files.js';
import { capturingLogger } from '../support/logs.js';
import { reapWithThisProcess } from '../support/reaper.js';
import { freePort } from '../support/redis-server.js';
import { filesUnder, startTestS3, type TestS3 } from '../support/s3-server.js';
import { TEST_JWT_SECRET } from '../support/server.js';
import { selectRows } from '../support/sql.js';

const root = path.resolve(import.meta.dirname, '../..');
const MiB = 1024 * 1024;
const HOUR = 3600_000;
/** What the upload declares in its Content-Length; it never sends that much. */
const DECLARED_BYTES = 30 * MiB;
/** A start takes 2 s on a quiet machine, many times that on two busy cores (see cluster.ts). */
const START_TIMEOUT_MS = 45_000;
const TEST_TIMEOUT_MS = 90_000;

const dirs: string[] = [];
const children: ChildProcess[] = [];
const disposers: Array<() => Promise<void>> = [];
let build: string;

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

// A build of our own: the process tests' `npm start` rebuilds dist/ (rm, then esbuild) while
// these servers would start from it. node_modules and package.json beside it, as in the repo.
beforeAll(async () => {
  build = await tempDir('parley-kill-build-');
  execFileSync(process.execPath, ['scripts/build.mjs', path.join(build, 'dist')], { cwd: root });
  await copyFile(path.join(root, 'package.json'), path.join(build, 'package.json'));
  await symlink(path.join(root, 'node_modules'), path.join(build, 'node_modules'), 'dir');
});

afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dispose of disposers.splice(0)) await dispose();
});

afterAll(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

interface Server {
  url: string;
  dataDir: string;
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

async function startServer(dataDir: string, extra: Record<string, string> = {}): Promise<Server> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [path.join(build, 'dist', 'server.js')], {
    cwd: build,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'test',
      JWT_SECRET: TEST_JWT_SECRET,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      AI_PROVIDER: 'none',
      LOG_LEVEL: 'info',
      UPLOAD_MAX_BYTES: String(64 * MiB),
      ...extra,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  reapWithThisProcess(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`server exited early:\n${output}`);
      return (await fetch(`${url}/health`).catch(() => undefined))?.ok === true;
    },
    START_TIMEOUT_MS,
    () => `no /health:\n${output}`,
  );
  return { url, dataDir, child, output: () => output, exited };
}

async function register(url: string): Promise<string> {
  const response = await new ApiClient(url).post<Envelope<AuthData>>(
    '/api/auth/register',
    buildUserInput(),
  );
  expect(response.status).toBe(201);
  return response.body.data!.accessToken;
}

/** Polls `check` until it answers true (an error thrown by it ends the wait at once). */
async function eventually(
  check: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${describe()}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A text file upload as a browser sends it (Content-Length of the whole body), of which the
 * test sends as much as it likes and then holds the connection open: mid-body for certain.
 */
interface PendingUpload {
  send(bytes: number): void;
  /** The client goes away: the socket is destroyed. */
  abort(): void;
  /** The status the server answered with, or the connection's error. */
  outcome: Promise<number | Error>;
}

function beginUpload(url: string, token: string, name: string): PendingUpload {
  const boundary = `----parley-kill-${createId()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
      'Content-Type: text/plain\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const req: ClientRequest = request(`${url}/api/attachments`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + DECLARED_BYTES + tail.length),
    },
  });
  const outcome = new Promise<number | Error>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', resolve);
  });
  req.write(head);
  const piece = Buffer.alloc(64 * 1024, 'a');
  return {
    send(bytes) {
      for (let left = bytes; left > 0; left -= piece.length)
        req.write(piece.subarray(0, Math.min(piece.length, left)));
    },
    abort: () => req.destroy(),
    outcome,
  };
}

const uploadsOf = (dataDir: string) => path.join(dataDir, 'uploads');
const partialsOf = async (dataDir: string) =>
  (await filesUnder(uploadsOf(dataDir))).filter((f) => f.startsWith('.partial/'));

/** The size of the one `.partial/` file, once it exists. */
async function partialSize(dataDir: string): Promise<number | undefined> {
  const partials = await partialsOf(dataDir);
  if (partials.length !== 1) return undefined;
  const info = await stat(path.join(uploadsOf(dataDir), partials[0]!)).catch(() => undefined);
  return info?.size;
}

/** The server's PGlite, opened here once the server process is gone. */
async function openServerDatabase(dataDir: string): Promise<Database> {
  const database = await openDatabase({ kind: 'pglite', dataDir: path.join(dataDir, 'pglite') });
  disposers.push(() => database.close());
  await database.migrate();
  return database;
}

const attachmentRows = (database: Database) =>
  selectRows<{ id: string; filename: string }>(
    database.db,
    sql`select id, filename from attachments order by id`,
  );

function cleanupOf(database: Database, storage: FileStorage): AttachmentCleanup {
  return new AttachmentCleanup(
    new AttachmentRepository(database.db),
    storage,
    capturingLogger().logger,
    { unattachedTtlMs: 24 * HOUR },
  );
}

describe('local storage', () => {
  it(
    'a client gone mid-body leaves nothing; SIGKILL mid-upload leaves a .partial file and no row, which the cleanup removes',
    async () => {
      const dataDir = await tempDir('parley-kill-local-');
      const server = await startServer(dataDir);
      const token = await register(server.url);

      // The client goes away after some MB: the partial file goes with it, and nothing else appears.
      const abandoned = beginUpload(server.url, token, 'abandoned.txt');
      abandoned.send(4 * MiB);
      await eventually(
        async () => ((await partialSize(dataDir)) ?? 0) >= MiB,
        10_000,
        () => 'the server never began writing the upload',
      );
      abandoned.abort();
      expect(await abandoned.outcome).toBeInstanceOf(Error);
      await eventually(
        async () => (await filesUnder(uploadsOf(dataDir))).length === 0,
        3_000,
        () => 'the aborted upload left a file behind',
      );

      // The server still serves: the next upload is whole.
      const kept = await upload(server.url, token, png(32, 32), 'kept.png', 'image/png');
      expect(kept.status).toBe(201);
      const keptFile = kept.body.data!.filename;
      expect(await filesUnder(uploadsOf(dataDir))).toEqual([keptFile]);

      // SIGKILL while the server is writing a partial file that is still growing.
      const killed = beginUpload(server.url, token, 'killed.txt');
      killed.send(3 * MiB);
      let before = 0;
      await eventually(
        async () => (before = (await partialSize(dataDir)) ?? 0) > 0,
        10_000,
        () => 'the server never began writing the second upload',
      );
      killed.send(5 * MiB);
      await eventually(
        async () => ((await partialSize(dataDir)) ?? 0) > Math.max(before, 4 * MiB),
        10_000,
        () => 'the partial file did not grow',
      );
      server.child.kill('SIGKILL');
      await server.exited;
      expect(await killed.outcome).toBeInstanceOf(Error);

      // Left behind: one partial file, and no row for it.
      const [partial] = await partialsOf(dataDir);
      expect(partial).toMatch(/^\.partial\/[a-z0-9]+\.txt\.[0-9a-f]{12}$/);
      const database = await openServerDatabase(dataDir);
      expect(await attachmentRows(database)).toEqual([
        { id: kept.body.data!.id, filename: keptFile },
      ]);

      // A kill after the file was renamed into place but before its row was written leaves a
      // complete file that no row names: one from two hours ago, and one from just now.
      const oldOrphan = `${createId()}.txt`;
      const youngOrphan = `${createId()}.txt`;
      for (const name of [oldOrphan, youngOrphan])
        await writeFile(path.join(uploadsOf(dataDir), name), 'complete, never recorded');
      const twoHoursAgo = new Date(Date.now() - 2 * HOUR);
      await utimes(path.join(uploadsOf(dataDir), oldOrphan), twoHoursAgo, twoHoursAgo);

      const cleanup = cleanupOf(database, new LocalStorage(uploadsOf(dataDir)));
      // Now: only what is over an hour old goes; younger writes may still be finishing.
      expect(await cleanup.sweep()).toEqual({
        unattached: 0,
        ofDeletedMessages: 0,
        orphans: 1,
        abandonedWrites: 0,
      });
      expect((await filesUnder(uploadsOf(dataDir))).sort()).toEqual(
        [keptFile, partial, youngOrphan].sort(),
      );

      // Two hours on: the partial file and the unrecorded file are gone; the real upload stays.
      expect(await cleanup.sweep(new Date(Date.now() + 2 * HOUR))).toEqual({
        unattached: 0,
        ofDeletedMessages: 0,
        orphans: 1,
        abandonedWrites: 1,
      });
      expect(await filesUnder(uploadsOf(dataDir))).toEqual([keptFile]);
      expect(await attachmentRows(database)).toEqual([
        { id: kept.body.data!.id, filename: keptFile },
      ]);
    },
    TEST_TIMEOUT_MS,
  );
});

/**
 * Passes every request on to `target` and notes its method and path: what the server asked of
 * the store (and the answer) shows what it did about a cut-off upload, even where s3rver cannot
 * carry it out.
 */
async function recordingProxy(target: string): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const proxy = createServer((req, res) => {
    const at = requests.push(`${req.method} ${req.url}`) - 1;
    const onward = request(
      `${target}${req.url}`,
      { method: req.method, headers: req.headers },
      (answer) => {
        requests[at] += ` → ${answer.statusCode}`;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    onward.on('error', () => res.destroy());
    req.pipe(onward);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  disposers.push(async () => {
    proxy.closeAllConnections();
    await new Promise((resolve) => proxy.close(resolve));
  });
  return { url: `http://127.0.0.1:${port}`, requests };
}

describe('S3 storage (s3rver)', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startTestS3();
  });
  afterAll(async () => {
    await s3?.dispose();
  });

  /** The incomplete multipart upload of the one upload in flight with a part stored, if any. */
  const uploadInFlight = async (exclude: ReadonlySet<string>) =>
    (await s3.incompleteUploads()).find((u) => u.parts > 0 && !exclude.has(u.key));

  it(
    'a client gone mid-body leaves no object and no row; SIGKILL mid-upload leaves no object and no row, and the cleanup removes unrecorded objects',
    async () => {
      const dataDir = await tempDir('parley-kill-s3-');
      const store = await recordingProxy(s3.endpoint);
      const server = await startServer(dataDir, { ...s3.env, S3_ENDPOINT: store.url });
      const token = await register(server.url);

      // Past the first 5 MiB part, so the multipart upload has begun at the store.
      const abandoned = beginUpload(server.url, token, 'abandoned.txt');
      abandoned.send(8 * MiB);
      let inFlight: { key: string } | undefined;
      await eventually(
        async () => (inFlight = await uploadInFlight(new Set())) !== undefined,
        10_000,
        () => 'no part of the upload reached the store',
      );
      const abandonedKey = inFlight!.key;
      abandoned.abort();
      expect(await abandoned.outcome).toBeInstanceOf(Error);
      // The server gives the multipart upload up at once (AWS S3 and MinIO drop its parts then;
      // s3rver answers 405 and keeps them, see below).
      await eventually(
        () =>
          Promise.resolve(
            store.requests.some((r) =>
              r.startsWith(`DELETE /${s3.bucket}/${abandonedKey}?uploadId=`),
            ),
          ),
        5_000,
        () => `no AbortMultipartUpload; the store was asked:\n${store.requests.join('\n')}`,
      );

      // The server still serves, and the one object in the bucket is the next upload's.
      const kept = await upload(server.url, token, png(32, 32), 'kept.png', 'image/png');
      expect(kept.status).toBe(201);
      const keptFile = kept.body.data!.filename;
      expect(await s3.objectKeys()).toEqual([`uploads/${keptFile}`]);

      // SIGKILL with a multipart upload under way: parts stored, the request still arriving.
      const killed = beginUpload(server.url, token, 'killed.txt');
      killed.send(12 * MiB);
      await eventually(
        async () => (inFlight = await uploadInFlight(new Set([abandonedKey]))) !== undefined,
        10_000,
        () => 'no part of the second upload reached the store',
      );
      const killedKey = inFlight!.key;
      expect(killedKey).toMatch(/^uploads\/[a-z0-9]+\.txt$/);
      server.child.kill('SIGKILL');
      await server.exited;
      expect(await killed.outcome).toBeInstanceOf(Error);

      // No object for either cut-off upload (an object exists only once its upload completes),
      // and no row.
      expect(await s3.objectKeys()).toEqual([`uploads/${keptFile}`]);
      const database = await openServerDatabase(dataDir);
      expect(await attachmentRows(database)).toEqual([
        { id: kept.body.data!.id, filename: keptFile },
      ]);

      // A kill after the object was complete but before its row was written: an object no row
      // names. Young, it stays (its upload may be finishing); an hour on, the cleanup removes it.
      const storage = new S3Storage({
        bucket: s3.bucket,
        endpoint: store.url,
        region: 'us-east-1',
        accessKeyId: 'S3RVER',
        secretAccessKey: 'S3RVER',
        forcePathStyle: true,
      });
      disposers.push(() => storage.close());
      const orphan = `${createId()}.txt`;
      await storage.write(
        orphan,
        Readable.from([Buffer.from('complete, never recorded')]),
        'text/plain',
      );
      const cleanup = cleanupOf(database, storage);
      expect((await cleanup.sweep()).orphans).toBe(0);
      expect((await s3.objectKeys()).sort()).toEqual(
        [`uploads/${keptFile}`, `uploads/${orphan}`].sort(),
      );

      // The parts of the two cut-off uploads: on AWS S3 or MinIO, removeAbandoned lists the
      // multipart uploads begun over an hour ago and aborts them, and a bucket lifecycle rule
      // (AbortIncompleteMultipartUpload) does so too without us. s3rver implements neither
      // ListMultipartUploads (501 NotImplemented, which each sweep takes as "none") nor
      // AbortMultipartUpload (405, so even the abort of the client-cancelled upload could not
      // drop its parts): its directory keeps them, where nothing sees them (no object, no row).
      const report = await cleanup.sweep(new Date(Date.now() + 2 * HOUR));
      expect(report).toMatchObject({ unattached: 0, ofDeletedMessages: 0, orphans: 1 });
      const listedUploads = new RegExp(`^GET /${s3.bucket}/\\?(.*&)?uploads=`);
      expect(store.requests.filter((r) => listedUploads.test(r))).toHaveLength(2);
      expect(await s3.objectKeys()).toEqual([`uploads/${keptFile}`]);
      expect(await attachmentRows(database)).toEqual([
        { id: kept.body.data!.id, filename: keptFile },
      ]);
    },
    TEST_TIMEOUT_MS,
  );
});
