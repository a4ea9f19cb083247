// Upload throughput and memory (issue 10, acceptance 6): a 50 MiB file streamed to
// POST /api/attachments against a plain copy of the same file on the same disk, and the server's
// peak RSS growth while it takes the file in (it must stream: growth well under the file size);
// the same with STORAGE=s3 against s3rver, beside a direct multipart upload of the file to that
// s3rver with @aws-sdk/lib-storage from this process.
//
//   npx tsx bench/upload.ts
//   env: BENCH_FILE_MIB (50), BENCH_ROUNDS (5), BENCH_KINDS (video,text), BENCH_STORAGES (local,s3),
//        BENCH_NODE_ARGS (Node's options for the API instances, e.g. --cpu-prof or --trace-gc)
//
// Per round and kind of file, one after the other (so a drift of the machine weighs on all alike):
// 1. the reference: the file copied with a read → write stream pipeline (64 KiB chunks) to another
//    file in the same temporary directory, not fsynced (no upload path fsyncs), and once more
//    fsynced before close, for what the disk itself takes;
// 2. a bare Node HTTP server (its own process) piping the same multipart request into a file:
//    the floor under any HTTP upload to disk, so what our code adds shows apart from HTTP's cost;
// 3. ours, STORAGE=local: `node dist/server.js`, its DATA_DIR in the same temporary directory; the
//    file streamed as multipart/form-data (http.request fed by a read stream), by a user registered
//    through the API;
// 4. the S3 reference: the file sent to s3rver by lib-storage's Upload from this process, with the
//    app's part size (5 MiB) and queue (2);
// 5. ours, STORAGE=s3 against that s3rver.
// Around each upload: the receiver's resting RSS (median of 10 readings), then its peak: the
// higher of the kernel's (VmHWM, reset just before) and of VmRSS sampled every 10 ms by a worker
// thread (each misses a little the other sees). Growth = peak − resting. After each of ours, the stored bytes are read back
// (GET …/content; on S3 the redirect followed) and their SHA-256 compared with the file's.
import { DeleteObjectCommand, GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { startBareUploadServer, type BareUploadServer } from './lib/bare-upload-server.js';
import { percentile } from './lib/bench-db.js';
import { cleanUpOnExit, cpuSeconds, startApi, type AppProcess } from './lib/bench-processes.js';
import { startBenchS3, type BenchS3 } from './lib/bench-s3.js';
import { peakRssBytes, resetPeakRss, restingRss, sampleRss } from './lib/process-memory.js';
import { streamUpload } from './lib/stream-upload.js';
import { digest, makeFile, sameBytes, type BenchFile, type Kind } from './lib/upload-files.js';

const MiB = 1024 * 1024;
const FILE_BYTES = Number(process.env.BENCH_FILE_MIB ?? 50) * MiB;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const KINDS = (process.env.BENCH_KINDS ?? 'video,text').split(',') as Kind[];
const STORAGES = (process.env.BENCH_STORAGES ?? 'local,s3').split(',') as Storage[];
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
const PART_BYTES = 5 * MiB; // the app's S3 part size and queue (storage/s3.storage.ts)
const QUEUE_SIZE = 1;

const began = performance.now();
const log = (line: string) =>
  process.stderr.write(`[${((performance.now() - began) / 1000).toFixed(1)} s] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => percentile(values, 50);
const mib = (bytes: number) => bytes / MiB;
const ownCpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

// What is measured is what `npm start` runs: built from this checkout now.
execFileSync('node', ['scripts/build.mjs'], { stdio: 'inherit' });
// Node 20: the SDK's notice that later versions want Node 22, on stderr; nothing else.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

// Everything on one disk: tmpdir() is on the root filesystem here (one device in `df`).
const root = mkdtempSync(path.join(tmpdir(), 'parley-bench-upload-'));
cleanUpOnExit(() => rmSync(root, { recursive: true, force: true }));
for (const dir of ['source', 'copies', 'bare']) mkdirSync(path.join(root, dir));

/** One measurement: time, and, for uploads, the receiver's memory and CPU. */
interface Measured {
  ms: number;
  /** CPU seconds of the receiver (of this process for the copies and the S3 reference). */
  cpu: number;
  /** To the file's last byte handed to the connection (or to lib-storage). */
  sentMs?: number;
  /** RSS at rest just before; the peak during (kernel or samples); the kernel's; the samples'. */
  resting?: number;
  peak?: number;
  kernelPeak?: number;
  sampledPeak?: number;
  s3rverCpu?: number;
}

// ---------------------------------------------------------------- the references

async function copy(file: BenchFile, fsync: boolean): Promise<Measured> {
  const target = path.join(root, 'copies', `${file.name}.${fsync ? 'fsync' : 'plain'}`);
  const cpuBefore = ownCpu();
  const started = performance.now();
  // `flush`: the descriptor is fsynced before it is closed.
  await pipeline(createReadStream(file.path), createWriteStream(target, { flush: fsync }));
  const ms = performance.now() - started;
  const cpu = ownCpu() - cpuBefore;
  if ((await stat(target)).size !== file.size) throw new Error(`copy of ${file.name}: short`);
  await unlink(target);
  return { ms, cpu };
}

/** RSS and CPU of `pid` (and s3rver's CPU) while `run` runs. */
async function watching<T>(
  pid: number,
  s3: BenchS3 | undefined,
  cpuOf: () => number,
  run: () => Promise<T>,
): Promise<{ result: T; watched: Omit<Measured, 'ms' | 'sentMs'> }> {
  const resting = await restingRss(pid);
  resetPeakRss(pid);
  const sampling = await sampleRss(pid, 10);
  const cpuBefore = cpuOf();
  const s3Before = s3 ? cpuSeconds(s3.pid) : 0;
  const result = await run();
  const cpu = cpuOf() - cpuBefore;
  const s3rverCpu = s3 ? cpuSeconds(s3.pid) - s3Before : undefined;
  await sleep(20); // anything the receiver does just after answering
  const sampled = await sampling.stop();
  const kernelPeak = peakRssBytes(pid);
  return {
    result,
    watched: {
      resting,
      peak: Math.max(kernelPeak, sampled.peak),
      kernelPeak,
      sampledPeak: sampled.peak,
      cpu,
      s3rverCpu,
    },
  };
}

async function bareUpload(bare: BareUploadServer, file: BenchFile): Promise<Measured> {
  const { result: upload, watched } = await watching(
    bare.pid,
    undefined,
    () => cpuSeconds(bare.pid),
    () => streamUpload(bare.url, 'none', file),
  );
  if (upload.status !== 201) throw new Error(`bare upload: ${upload.status} ${upload.body}`);
  const stored = (JSON.parse(upload.body) as { file: string }).file;
  if ((await stat(stored)).size !== upload.bodyBytes) throw new Error(`${stored}: short`);
  await unlink(stored);
  return { ...watched, ms: upload.ms, sentMs: upload.sentMs };
}

const clients = new Map<BenchS3, S3Client>();
const s3Client = (s3: BenchS3) => {
  if (!clients.has(s3)) clients.set(s3, s3.client());
  return clients.get(s3)!;
};
let references = 0;

/** The file straight to s3rver with lib-storage, as the app's S3Storage sends it. */
async function s3Reference(s3: BenchS3, file: BenchFile): Promise<Measured> {
  const client = s3Client(s3);
  const key = `reference/${references++}-${file.name}`;
  let sentMs = NaN;
  const { result: ms, watched } = await watching(process.pid, s3, ownCpu, async () => {
    const started = performance.now();
    const body = createReadStream(file.path);
    body.once('end', () => (sentMs = performance.now() - started));
    await new Upload({
      client,
      params: { Bucket: s3.bucket, Key: key, Body: body, ContentType: file.type },
      partSize: PART_BYTES,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    }).done();
    return performance.now() - started;
  });
  const object = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  sameBytes(`S3 reference, ${file.name}`, file, await digest(object.Body as Readable));
  await client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
  return { ...watched, ms, sentMs };
}

// ---------------------------------------------------------------- ours

type Storage = 'local' | 's3';

interface Target {
  storage: Storage;
  api: AppProcess;
  dataDir: string;
  token: string;
  s3: BenchS3 | undefined;
}

/** Every setting that changes a figure, set here; none inherited from the shell. */
function appEnv(dataDir: string, storage: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    DATA_DIR: dataDir,
    DATABASE_URL: 'memory://',
    JWT_SECRET: 'bench-secret-bench-secret-bench-secret-42',
    JWT_ACCESS_TTL: '1h',
    AI_PROVIDER: 'none',
    COLLECT_DEFAULT_METRICS: 'true',
    REGISTER_MAX_PER_IP: '1000000',
    ARGON2_MEMORY_KIB: '4096', // registration is not measured here
    ARGON2_TIME_COST: '1',
    UPLOAD_MAX_BYTES: String(FILE_BYTES + 16 * MiB),
    UPLOAD_RATE_LIMIT: '1000000',
    UPLOAD_CLEANUP_INTERVAL: '24h', // no sweep during a measurement
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ...storage,
  };
}

async function startTarget(storage: Storage, s3: BenchS3 | undefined): Promise<Target> {
  const dataDir = path.join(root, `data-${storage}`);
  mkdirSync(dataDir);
  const api = await startApi(
    `api-${storage}`,
    appEnv(dataDir, storage === 's3' ? s3!.env : { STORAGE: 'local' }),
    NODE_ARGS,
  );
  const response = await fetch(`${api.url}/api/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: `uploader-${storage}@bench.test`, password: 'bench-password-1' }),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`register: ${response.status} ${text}`);
  const token = (JSON.parse(text) as { data: { accessToken: string } }).data.accessToken;
  return { storage, api, dataDir, token, s3: storage === 's3' ? s3 : undefined };
}

async function ourUpload(target: Target, file: BenchFile): Promise<Measured> {
  const { api } = target;
  const { result: upload, watched } = await watching(
    api.pid,
    target.s3,
    () => cpuSeconds(api.pid),
    () => streamUpload(`${api.url}/api/attachments`, target.token, file),
  );
  const label = `upload, ${target.storage}, ${file.name}`;
  if (upload.status !== 201) throw new Error(`${label}: ${upload.status} ${upload.body}`);
  const view = (JSON.parse(upload.body) as { data: { id: string; filename: string } }).data;
  // The bytes back through the API (on S3 a 302 to a presigned link; fetch follows it and drops
  // the bearer token on the way to the other origin).
  const content = await fetch(`${api.url}/api/attachments/${view.id}/content`, {
    headers: { authorization: `Bearer ${target.token}` },
  });
  if (!content.ok || !content.body) throw new Error(`${label}: content ${content.status}`);
  // Text is served with its charset (proven UTF-8 at upload).
  if (content.headers.get('content-type')?.split(';')[0] !== file.type) {
    throw new Error(`${label}: served as ${content.headers.get('content-type')}`);
  }
  sameBytes(label, file, await digest(content.body));
  // Removed behind the app's back, so the rounds do not fill the disk or the bucket.
  if (target.s3) {
    await s3Client(target.s3).send(
      new DeleteObjectCommand({ Bucket: target.s3.bucket, Key: `uploads/${view.filename}` }),
    );
  } else {
    const uploads = path.join(target.dataDir, 'uploads');
    if ((await stat(path.join(uploads, view.filename))).size !== file.size) {
      throw new Error(`${label}: wrong size on disk`);
    }
    const partial = await readdir(path.join(uploads, '.partial'));
    if (partial.length > 0) throw new Error(`left in .partial: ${partial.join(', ')}`);
    await unlink(path.join(uploads, view.filename));
  }
  return { ...watched, ms: upload.ms, sentMs: upload.sentMs };
}

// ---------------------------------------------------------------- the run

log(`making the files (${mib(FILE_BYTES)} MiB each: ${KINDS.join(', ')})`);
const files = new Map<Kind, BenchFile>();
for (const kind of KINDS)
  files.set(kind, await makeFile(path.join(root, 'source'), kind, FILE_BYTES));

const bare = await startBareUploadServer(path.join(root, 'bare'));
const s3 = STORAGES.includes('s3') ? await startBenchS3() : undefined;
const targets: Target[] = [];
for (const storage of STORAGES) targets.push(await startTarget(storage, s3));
log(`servers ready: ${targets.map((t) => `${t.api.name} (pid ${t.api.pid})`).join(', ')}`);

type Path = 'copy' | 'copy, fsync' | 'bare HTTP' | 'S3 reference' | `upload, ${Storage}`;
const PATHS: Path[] = [
  'copy',
  'copy, fsync',
  'bare HTTP',
  'upload, local',
  'S3 reference',
  'upload, s3',
];
const results = new Map<string, Measured[]>();
const cold = new Map<string, Measured>();
const growth = (m: Measured) => m.peak! - m.resting!;
const said = (what: string, m: Measured) =>
  `${what} ${m.ms.toFixed(0)} ms (CPU ${m.cpu.toFixed(2)} s)` +
  (m.peak === undefined
    ? ''
    : ` +${mib(growth(m)).toFixed(1)} MiB over ${mib(m.resting!).toFixed(0)}` +
      ` (kernel +${mib(m.kernelPeak! - m.resting!).toFixed(1)},` +
      ` sampled +${mib(m.sampledPeak! - m.resting!).toFixed(1)})`);

/** One of each path with `file`; into `results`, or into `cold` for the first uploads. */
async function round(file: BenchFile, into: 'results' | 'cold'): Promise<string> {
  const line: string[] = [];
  const keep = (what: Path, measured: Measured) => {
    const key = `${file.kind}|${what}`;
    if (into === 'cold') cold.set(key, measured);
    else results.set(key, [...(results.get(key) ?? []), measured]);
    line.push(said(what, measured));
  };
  if (into === 'results') {
    keep('copy', await copy(file, false));
    keep('copy, fsync', await copy(file, true));
  }
  keep('bare HTTP', await bareUpload(bare, file));
  for (const target of targets) {
    if (target.s3) keep('S3 reference', await s3Reference(target.s3, file));
    keep(`upload, ${target.storage}`, await ourUpload(target, file));
  }
  return line.join(', ');
}

// The first upload of each kind, kept apart: the very first into a fresh process is the cold case
// (nothing left of an earlier upload to reuse), and the first ones' times include compiling code.
for (const kind of KINDS) log(`first uploads, ${kind}: ${await round(files.get(kind)!, 'cold')}`);
for (let n = 1; n <= ROUNDS; n++) {
  for (const kind of KINDS) log(`round ${n}, ${kind}: ${await round(files.get(kind)!, 'results')}`);
}

await bare.stop();
for (const target of targets) await target.api.stop();
for (const client of clients.values()) client.destroy();
await s3?.stop();

// ---------------------------------------------------------------- the figures

const fileMib = mib(FILE_BYTES);
/** Median over the rounds of reference / this, each round's pair measured back to back. */
const against = (reference: Path, kind: Kind, runs: Measured[]) => {
  const references = results.get(`${kind}|${reference}`);
  return references ? median(runs.map((run, i) => references[i]!.ms / run.ms)).toFixed(2) : '';
};
const header = [
  'file',
  'path',
  'time',
  'MiB/s',
  'copy/this',
  'bare/this',
  'S3 ref/this',
  'RSS growth',
  'of file',
  'first growth',
  'handed over',
  'CPU s',
  's3rver CPU s',
];
const rows: string[][] = [];
for (const kind of KINDS) {
  for (const what of PATHS) {
    const runs = results.get(`${kind}|${what}`);
    if (!runs) continue;
    const ms = median(runs.map((r) => r.ms));
    const upload = runs[0]!.peak !== undefined;
    const grew = Math.max(...runs.map(growth));
    const first = cold.get(`${kind}|${what}`);
    rows.push([
      kind,
      what,
      `${ms.toFixed(0)} ms`,
      (fileMib / (ms / 1000)).toFixed(0),
      against('copy', kind, runs),
      what.startsWith('upload') ? against('bare HTTP', kind, runs) : '',
      what === 'upload, s3' ? against('S3 reference', kind, runs) : '',
      upload ? `${mib(grew).toFixed(1)} MiB` : '',
      upload ? `${((100 * grew) / FILE_BYTES).toFixed(1)}%` : '',
      first ? `${mib(growth(first)).toFixed(1)} MiB` : '',
      upload ? `${median(runs.map((r) => r.sentMs!)).toFixed(0)} ms` : '',
      median(runs.map((r) => r.cpu)).toFixed(2),
      runs[0]!.s3rverCpu === undefined ? '' : median(runs.map((r) => r.s3rverCpu!)).toFixed(2),
    ]);
  }
}
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const format = (cells: string[]) =>
  cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
const load = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
console.log(`\nA ${fileMib} MiB file, ${ROUNDS} rounds; load average ${load} at the end.\n`);
console.log(format(header));
for (const row of rows) console.log(format(row));
console.log(`
time, MiB/s, handed over, CPU s: medians of the rounds. x/this: median of each round's ratio of
the two (measured back to back); below 1 this path is slower than x.
RSS growth: the largest of the rounds of (peak during − resting just before), the peak being the
higher of the kernel's (VmHWM, reset just before) and the 10 ms samples'; of this process for the
S3 reference. first growth: the same
for the first upload of this kind, before the rounds (for ${KINDS[0]}, the first into the fresh process).
handed over: when the client had handed the file's last byte to the connection (or lib-storage).
CPU s: the receiver's, all threads (this process's for the copies and the S3 reference).`);
