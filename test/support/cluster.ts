// Real processes for the scale-out tests (SPEC §2): API instances (`server.js`) and
// workers (`worker.js`) of the cluster's own build, sharing a PostgreSQL database of the test file's own and a
// redis-server the file starts itself on a free port (never the machine's own Redis). What a
// start began is stopped again by dispose(), by startCluster itself when the start fails, and
// with SIGKILL when the test process dies (reaper.ts), so no process outlives its file.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { ApiClient } from './api-client.js';
import { clonePostgresDatabase } from './database.js';
import { reapWithThisProcess } from './reaper.js';
import { freePort, startTestRedis, type TestRedis } from './redis-server.js';
import { connectAs, type ConnectOptions, type RecordingSocket } from './sockets.js';

const root = path.resolve(import.meta.dirname, '../..');
/**
 * The build the processes run: a copy of its own (test/support/global-cluster-build.ts), since
 * other tests run `npm start`, which rebuilds dist/ under processes starting from it.
 */
export const CLUSTER_DIST = '.cluster-dist';

/** The one secret of the cluster: a token issued by one instance is valid on every other. */
export const CLUSTER_JWT_SECRET = 'cluster-tests-secret-shared-by-every-instance-0123456789';

/**
 * How long a process may take to be ready. One start takes 2 s on a quiet machine, but 8 s at a
 * load of 10 on two cores, and three files starting nine processes at once took over 20 s.
 */
const READY_TIMEOUT_MS = 45_000;
/** How long dispose() waits after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5_000;
const KEPT_LINES = 200;
/** What a worker prints once it takes jobs: its readiness signal (it serves no HTTP). */
const WORKER_READY = /worker ready/i;
/** An OpenAI-compatible address where nothing listens (the discard port). */
const IDLE_UPSTREAM = 'http://127.0.0.1:9/v1';

export interface ClusterOptions {
  /** API instances, each on its own port (default 2). */
  instances?: number;
  /** Worker processes (default 1). */
  workers?: number;
  /** The OpenAI-compatible upstream (a FakeOpenAi) answers come from; unset: AI_PROVIDER=none. */
  ai?: { baseURL: string; model?: string };
  /** Variables for every process, over the defaults (workers: LOG_LEVEL=info, see workerDefaults). */
  env?: Record<string, string>;
  /** Variables for the API instances only, over `env`. */
  apiEnv?: Record<string, string>;
  /** Variables for the workers only, over `env`. */
  workerEnv?: Record<string, string>;
  /** How long each process may take to be ready (default 45 s). */
  readyTimeoutMs?: number;
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ClusterProcess {
  /** `api-0`, `worker-0`: names the process in logs and errors. */
  readonly name: string;
  /** The environment it runs with (a restart uses it again). */
  readonly env: Readonly<Record<string, string>>;
  readonly running: boolean;
  readonly pid: number | undefined;
  /** The last 200 lines of its stdout and stderr, across restarts. */
  logs(): string;
  /** Sends the signal (default SIGTERM) and resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<ProcessExit>;
  /** Stops it (SIGTERM) when running, starts it again with the same env, waits until ready. */
  restart(): Promise<void>;
}

export interface ClusterInstance extends ClusterProcess {
  readonly port: number;
  readonly url: string;
  readonly api: ApiClient;
  /** A recording socket on this instance; closed by closeSockets() and dispose(). */
  connect(user: { accessToken?: string }, options?: ConnectOptions): Promise<RecordingSocket>;
}

export interface Cluster {
  instances: ClusterInstance[];
  workers: ClusterProcess[];
  redis: TestRedis;
  databaseUrl: string;
  /** Every process's recent output, each under its name: for failure messages. */
  logs(): string;
  /** Closes the sockets opened through instances[i].connect(). */
  closeSockets(): void;
  /** Kills every process, drops the database, stops Redis, removes the temporary directories. */
  dispose(): Promise<void>;
}

/** The last lines a process wrote, and a way to watch for one. */
class OutputTail {
  private readonly lines: string[] = [];
  private partial = '';
  private readonly watchers = new Set<(line: string) => void>();

  write(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.push(line);
  }

  flush(): void {
    if (this.partial) this.push(this.partial);
    this.partial = '';
  }

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > KEPT_LINES) this.lines.shift();
    for (const watcher of [...this.watchers]) watcher(line);
  }

  watch(watcher: (line: string) => void): () => void {
    this.watchers.add(watcher);
    return () => void this.watchers.delete(watcher);
  }

  text(): string {
    return [...this.lines, ...(this.partial ? [this.partial] : [])].join('\n');
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class ManagedProcess implements ClusterProcess {
  protected readonly output = new OutputTail();
  private child: ChildProcess | undefined;
  private exited: Promise<ProcessExit> = Promise.resolve({ code: null, signal: null });
  private starts = 0;

  constructor(
    readonly name: string,
    private readonly script: string,
    readonly env: Readonly<Record<string, string>>,
    protected readonly readyTimeoutMs: number,
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && !this.child.signalCode;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  logs(): string {
    return this.output.text();
  }

  /** Spawns the process and waits until it is ready; a failure carries its output. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    if (this.starts++ > 0) this.output.push(`----- ${this.name} restarted -----`);
    // cwd is the process's own DATA_DIR, so a developer's .env in the checkout is not read.
    const child = spawn(process.execPath, [path.join(root, this.script)], {
      cwd: this.env.DATA_DIR,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    reapWithThisProcess(child);
    this.child = child;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => this.output.write(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => this.output.write(chunk));
    this.exited = new Promise((resolve) => {
      const done = (exit: ProcessExit) => {
        this.output.flush();
        resolve(exit);
      };
      child.once('close', (code, signal) => done({ code, signal }));
      child.once('error', (error) => {
        this.output.push(`spawn failed: ${error.message}`);
        done({ code: null, signal: null });
      });
    });
    await this.untilReady(this.exited);
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<ProcessExit> {
    if (this.running) this.child!.kill(signal);
    return this.exited;
  }

  async restart(): Promise<void> {
    await this.kill('SIGTERM');
    await this.start();
  }

  /** SIGTERM, then SIGKILL after a grace period: dispose() never waits on a stuck process. */
  async stop(): Promise<void> {
    if (!this.running) return;
    const exited = this.kill('SIGTERM');
    const late = await Promise.race([
      exited.then(() => false),
      sleep(STOP_GRACE_MS).then(() => true),
    ]);
    if (late) await this.kill('SIGKILL');
  }

  /** An error naming the process, with what it wrote. */
  failure(problem: string): Error {
    return new Error(
      `${this.name} ${problem}\n----- last output of ${this.name} -----\n${this.logs()}`,
    );
  }

  /** Resolves once the process can be used; a worker says so in its output. */
  protected untilReady(exited: Promise<ProcessExit>): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unwatch();
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(
        () => finish(this.failure(`printed no "worker ready" within ${this.readyTimeoutMs} ms`)),
        this.readyTimeoutMs,
      );
      const unwatch = this.output.watch((line) => {
        if (WORKER_READY.test(line)) finish();
      });
      void exited.then((exit) =>
        finish(this.failure(`exited (${describeExit(exit)}) before printing "worker ready"`)),
      );
    });
  }
}

class ApiInstance extends ManagedProcess implements ClusterInstance {
  readonly url: string;
  readonly api: ApiClient;

  constructor(
    name: string,
    env: Readonly<Record<string, string>>,
    readonly port: number,
    readyTimeoutMs: number,
    private readonly track: (socket: RecordingSocket) => void,
  ) {
    super(name, `${CLUSTER_DIST}/server.js`, env, readyTimeoutMs);
    this.url = `http://127.0.0.1:${port}`;
    this.api = new ApiClient(this.url);
  }

  async connect(user: { accessToken?: string }, options?: ConnectOptions) {
    const socket = await connectAs(this.url, user.accessToken, options);
    this.track(socket);
    return socket;
  }

  /** Ready when /ready answers 200 (the database, Redis and the AI provider all answer). */
  protected override async untilReady(exited: Promise<ProcessExit>): Promise<void> {
    let gone: ProcessExit | undefined;
    void exited.then((exit) => (gone = exit));
    const deadline = Date.now() + this.readyTimeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (gone) throw this.failure(`exited (${describeExit(gone)}) before /ready answered 200`);
      try {
        const response = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(2_000) });
        const body = await response.text();
        if (response.status === 200) return;
        last = `${response.status} ${body}`;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      await sleep(100);
    }
    throw this.failure(`gave no 200 from /ready within ${this.readyTimeoutMs} ms (last: ${last})`);
  }
}

function describeExit({ code, signal }: ProcessExit): string {
  return signal ? `signal ${signal}` : `code ${String(code)}`;
}

/** Undo steps, run last first; every step runs even when one fails. */
class Cleanup {
  private readonly steps: Array<() => Promise<unknown>> = [];

  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cluster cleanup failed');
  }
}

/** What every process gets: nothing of the parent's environment but PATH and HOME. */
function defaultEnv(
  options: ClusterOptions,
  databaseUrl: string,
  redisUrl: string,
): Record<string, string> {
  const ai: Record<string, string> = options.ai
    ? {
        AI_PROVIDER: 'openai',
        OPENAI_BASE_URL: options.ai.baseURL,
        OPENAI_API_KEY: 'sk-test',
        AI_MODEL: options.ai.model ?? 'fake-model',
        AI_TITLES: 'false',
      }
    : { AI_PROVIDER: 'none' };
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    // Three files of three processes each stay well under PostgreSQL's 100 connections.
    DATABASE_POOL_SIZE: '5',
    REDIS_URL: redisUrl,
    JWT_SECRET: CLUSTER_JWT_SECRET,
    LOG_LEVEL: 'warn',
    WORKERS_INLINE: 'false',
    COLLECT_DEFAULT_METRICS: 'false',
    // Cheap argon2id (still argon2id), as the in-process test servers use.
    ARGON2_MEMORY_KIB: '4096',
    ARGON2_TIME_COST: '1',
    ...ai,
  };
}

/**
 * What a worker gets over the defaults. Its readiness line is logged at info. And it refuses
 * AI_PROVIDER=none (nothing to run): in a cluster with the AI off it gets an upstream where
 * nothing listens, which it never calls, as the instances queue no answers.
 */
function workerDefaults(options: ClusterOptions): Record<string, string> {
  return {
    LOG_LEVEL: 'info',
    ...(options.ai
      ? {}
      : { AI_PROVIDER: 'openai', OPENAI_BASE_URL: IDLE_UPSTREAM, OPENAI_API_KEY: 'sk-unused' }),
  };
}

/**
 * Starts Redis, clones the database and starts the processes, all at once; resolves when every
 * API instance's /ready is 200 and every worker has printed "worker ready".
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const cleanup = new Cleanup();
  const sockets: RecordingSocket[] = [];
  const closeSockets = () => {
    for (const socket of sockets.splice(0)) socket.close();
  };
  try {
    const redis = await startTestRedis();
    cleanup.add(() => redis.dispose());
    const database = await clonePostgresDatabase();
    cleanup.add(() => database.drop());
    const dirs: string[] = [];
    cleanup.add(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));
    const processes: ManagedProcess[] = [];
    cleanup.add(() => Promise.all(processes.map((p) => p.stop())));
    const dataDir = async () => {
      const dir = await mkdtemp(path.join(tmpdir(), 'parley-cluster-'));
      dirs.push(dir);
      return dir;
    };

    const env = defaultEnv(options, database.url, redis.url);
    const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
    const instances: ApiInstance[] = [];
    for (let i = 0; i < (options.instances ?? 2); i++) {
      const port = await freePort();
      const instanceEnv = {
        ...env,
        ...options.env,
        ...options.apiEnv,
        PORT: String(port),
        DATA_DIR: await dataDir(),
      };
      instances.push(
        new ApiInstance(`api-${i}`, instanceEnv, port, readyTimeoutMs, (s) => sockets.push(s)),
      );
    }
    const workers: ManagedProcess[] = [];
    for (let i = 0; i < (options.workers ?? 1); i++) {
      const { PORT: _port, ...workerEnv } = {
        ...env,
        ...workerDefaults(options),
        ...options.env,
        ...options.workerEnv,
      };
      workers.push(
        new ManagedProcess(
          `worker-${i}`,
          `${CLUSTER_DIST}/worker.js`,
          { ...workerEnv, DATA_DIR: await dataDir() },
          readyTimeoutMs,
        ),
      );
    }
    processes.push(...instances, ...workers);
    const started = await Promise.allSettled(processes.map((p) => p.start()));
    const failures = started.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (failures.length > 0) {
      throw new Error(`the cluster did not start:\n${failures.map((e) => e.message).join('\n\n')}`);
    }

    let disposed = false;
    return {
      instances,
      workers,
      redis,
      databaseUrl: database.url,
      logs: () =>
        processes
          .map(
            (p) =>
              `===== ${p.name} (${p.running ? `pid ${p.pid}` : 'not running'}) =====\n${p.logs()}`,
          )
          .join('\n'),
      closeSockets,
      dispose: async () => {
        if (disposed) return;
        disposed = true;
        closeSockets();
        await cleanup.run();
      },
    };
  } catch (error) {
    closeSockets();
    await cleanup.run().catch(() => undefined);
    throw error;
  }
}

/**
 * One cluster for a test file: started before its tests, sockets closed after each test, every
 * process's output printed when a test fails, all of it gone after the file.
 */
export function useCluster(options: ClusterOptions = {}): () => Cluster {
  let cluster: Cluster | undefined;
  // Past the processes' own readiness timeout, so a slow start fails with their output.
  const startTimeoutMs = (options.readyTimeoutMs ?? READY_TIMEOUT_MS) + 30_000;
  beforeAll(async () => {
    cluster = await startCluster(options);
  }, startTimeoutMs);
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      if (cluster)
        process.stderr.write(`\nOutput of the cluster's processes:\n${cluster.logs()}\n`);
    });
  });
  afterEach(() => cluster?.closeSockets());
  afterAll(async () => {
    await cluster?.dispose();
  });
  return () => {
    if (!cluster) throw new Error('the cluster has not started (see beforeAll)');
    return cluster;
  };
}
