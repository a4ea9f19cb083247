// A process's resident memory from /proc: sampled every few milliseconds by a worker thread (so
// the samples keep time while this process's event loop is busy), and the kernel's own peak
// (VmHWM), which can be reset, so a short spike between two samples is not missed.
import { readFileSync, writeFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** A field of /proc/<pid>/status in bytes (the kernel writes them in kB). */
function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export const rssBytes = (pid: number): number => statusBytes(pid, 'VmRSS');

/** The kernel's peak RSS since the process started or since `resetPeakRss`. */
export const peakRssBytes = (pid: number): number => statusBytes(pid, 'VmHWM');

/** Sets VmHWM back to the current RSS (`5` to clear_refs; Linux ≥ 4.0, our own processes). */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** The median of `count` readings `everyMs` apart: the resting RSS before a measurement. */
export async function restingRss(pid: number, count = 10, everyMs = 10): Promise<number> {
  const readings: number[] = [];
  for (let i = 0; i < count; i++) {
    readings.push(rssBytes(pid));
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return readings.sort((a, b) => a - b)[Math.floor(count / 2)]!;
}

// CommonJS, evaluated in the worker: reads VmRSS until the shared flag is set.
const SAMPLER = `
const { workerData, parentPort } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const flag = new Int32Array(workerData.flag);
const nap = new Int32Array(new SharedArrayBuffer(4));
let peak = 0;
let samples = 0;
while (Atomics.load(flag, 0) === 0) {
  try {
    const kb = Number(/^VmRSS:\\s+(\\d+) kB/m.exec(readFileSync(workerData.file, 'utf8'))[1]);
    if (kb > peak) peak = kb;
    samples++;
  } catch {
    break; // the process is gone
  }
  Atomics.wait(nap, 0, 0, workerData.everyMs);
}
parentPort.postMessage({ peak: peak * 1024, samples });
`;

export interface RssSampling {
  /** Stops sampling; the highest RSS seen, in bytes, and how many samples were taken. */
  stop(): Promise<{ peak: number; samples: number }>;
}

/** Starts sampling `pid`'s VmRSS every `everyMs` milliseconds. */
export async function sampleRss(pid: number, everyMs = 10): Promise<RssSampling> {
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(SAMPLER, {
    eval: true,
    workerData: { file: `/proc/${pid}/status`, everyMs, flag },
  });
  const result = new Promise<{ peak: number; samples: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await new Promise((resolve) => worker.once('online', resolve));
  return {
    async stop() {
      Atomics.store(new Int32Array(flag), 0, 1);
      const sampled = await result;
      await worker.terminate();
      return sampled;
    },
  };
}
