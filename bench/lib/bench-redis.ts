// A redis-server of the benchmark's own on a free port (never the machine's own Redis), no
// persistence, killed with the benchmark; and what it says about the commands it ran.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort, ownChild } from './bench-processes.js';

export interface BenchRedis {
  url: string;
  pid: number;
  /** Calls per command so far (`INFO commandstats`), the INFO calls of this module left out. */
  commandCalls(): Promise<Map<string, number>>;
  /** Starts recording every command (MONITOR: it costs Redis CPU, so never while CPU is measured). */
  monitor(): Promise<{ stop(): Promise<Monitored> }>;
  stop(): Promise<void>;
}

/** Commands by name: those the clients sent and those scripts ran. */
export interface Monitored {
  sent: Map<string, number>;
  inScripts: Map<string, number>;
}

export async function startBenchRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'parley-bench-redis-'));
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { cwd: dir, stdio: 'ignore' },
  );
  ownChild(child, () => rmSync(dir, { recursive: true, force: true }));
  const url = `redis://127.0.0.1:${port}`;
  let client: Redis;
  for (let i = 0; ; i++) {
    client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined); // until it listens
    try {
      await client.connect();
      await client.ping();
      break;
    } catch (error) {
      client.disconnect();
      if (i > 100 || child.exitCode !== null) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    pid: child.pid!,
    async commandCalls() {
      const calls = new Map<string, number>();
      for (const line of (await client.info('commandstats')).split('\n')) {
        const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
        if (match && match[1] !== 'info') calls.set(match[1]!, Number(match[2]));
      }
      return calls;
    },
    async monitor() {
      const monitoring = await client.duplicate().monitor();
      const seen: Monitored = { sent: new Map(), inScripts: new Map() };
      monitoring.on('monitor', (_time: string, args: string[], source: string) => {
        const name = args[0]!.toLowerCase();
        if (name === 'info') return; // this module's own
        const into = source === 'lua' ? seen.inScripts : seen.sent;
        into.set(name, (into.get(name) ?? 0) + 1);
      });
      return {
        async stop() {
          await new Promise((resolve) => setTimeout(resolve, 100)); // the last lines in flight
          monitoring.disconnect();
          return seen;
        },
      };
    },
    async stop() {
      client.disconnect();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Calls per command between two readings of `commandCalls`, largest first, zeros left out. */
export function callsBetween(
  before: Map<string, number>,
  after: Map<string, number>,
): Array<[string, number]> {
  return [...after]
    .map(([command, calls]): [string, number] => [command, calls - (before.get(command) ?? 0)])
    .filter(([, calls]) => calls > 0)
    .sort((a, b) => b[1] - a[1]);
}
