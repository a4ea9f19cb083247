// The processes of a multi-process benchmark: the app's own entry points (`node dist/server.js`,
// `node dist/worker.js`) started with an environment the benchmark sets in full, and every child
// killed when the benchmark ends, however it ends (an exception, Ctrl-C).
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const children = new Set<ChildProcess>();
const cleanups: Array<() => void> = [];
let installed = false;

/** Registers a child to be killed when this process exits (and installs the hooks once). */
export function ownChild(child: ChildProcess, cleanup?: () => void): void {
  children.add(child);
  if (cleanup) cleanups.push(cleanup);
  child.once('exit', () => children.delete(child));
  installHooks();
}

/** Runs `cleanup` (synchronous: removing a temporary directory) when this process exits. */
export function cleanUpOnExit(cleanup: () => void): void {
  cleanups.push(cleanup);
  installHooks();
}

function installHooks(): void {
  if (installed) return;
  installed = true;
  // 'exit' runs on a normal end, after an uncaught exception and after process.exit().
  process.on('exit', () => {
    for (const running of children) running.kill('SIGKILL');
    for (const clean of cleanups) clean();
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** User and system CPU seconds used so far by a process, all its threads (ticks of 10 ms). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime, in clock ticks (USER_HZ, 100 a second)
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/**
 * CPU seconds used so far by a process, all its threads, to the nanosecond: the scheduler's own
 * run time of each thread (/proc/<pid>/task/<tid>/schedstat), where /proc/<pid>/stat counts in
 * ticks of 10 ms. A thread that ended takes its time with it (Node's and Redis's threads live
 * as long as their process).
 */
export function cpuSeconds(pid: number): number {
  let nanoseconds = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      nanoseconds += Number(
        readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0],
      );
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return nanoseconds / 1e9;
}

export interface AppProcess {
  name: string;
  pid: number;
  /** The HTTP base URL (API instances only). */
  url: string | undefined;
  /** SIGTERM, then waits for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startNode(
  name: string,
  script: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): ChildProcess {
  const child = spawn('node', [...nodeArgs, script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  ownChild(child);
  // Whatever it logs (warnings and worse at the benchmark's LOG_LEVEL) is shown, with its name.
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => {
      for (const line of text.split('\n').filter(Boolean)) {
        if (!line.includes('worker ready')) process.stderr.write(`[${name}] ${line}\n`);
      }
    });
  }
  return child;
}

function stopper(child: ChildProcess) {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
}

/** An API instance on a free port; resolves once GET /ready answers 200. */
export async function startApi(
  name: string,
  env: Record<string, string>,
  /** Node's own options, e.g. --cpu-prof to profile the instance. */
  nodeArgs: string[] = [],
): Promise<AppProcess> {
  const port = await freePort();
  const child = startNode(
    name,
    'dist/server.js',
    { ...env, PORT: String(port), HOST: '127.0.0.1' },
    nodeArgs,
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (i > 300) throw new Error(`${name} was not ready after 30 s`);
    await sleep(100);
  }
  return { name, pid: child.pid!, url, stop: stopper(child) };
}

/** A worker process; resolves once it logs "worker ready" (it needs LOG_LEVEL info for that). */
export async function startWorker(name: string, env: Record<string, string>): Promise<AppProcess> {
  const child = startNode(name, 'dist/worker.js', env);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} was not ready after 30 s`)), 30_000);
    child.stdout!.on('data', (text: string) => {
      if (!text.includes('worker ready')) return;
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
  return { name, pid: child.pid!, url: undefined, stop: stopper(child) };
}
