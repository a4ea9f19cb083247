// Caps how many async tasks of one kind run at once; the rest wait in FIFO order.

export interface Semaphore {
  run<T>(task: () => Promise<T>): Promise<T>;
}

export function createSemaphore(limit: number): Semaphore {
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    active -= 1;
    waiting.shift()?.();
  };
  return {
    async run(task) {
      if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      active += 1;
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}

export interface KeyedSemaphore {
  /** Runs `task` once fewer than `limit` tasks of the same key are running. */
  run<T>(key: string, task: () => Promise<T>): Promise<T>;
  /** Keys with a task running or waiting (idle keys are forgotten). */
  readonly size: number;
}

/** One semaphore per key (e.g. per user), created on demand and dropped when idle. */
export function createKeyedSemaphore(limit: number): KeyedSemaphore {
  const byKey = new Map<string, { semaphore: Semaphore; users: number }>();
  return {
    async run(key, task) {
      let entry = byKey.get(key);
      if (!entry) {
        entry = { semaphore: createSemaphore(limit), users: 0 };
        byKey.set(key, entry);
      }
      entry.users += 1;
      try {
        return await entry.semaphore.run(task);
      } finally {
        entry.users -= 1;
        if (entry.users === 0) byKey.delete(key);
      }
    },
    get size() {
      return byKey.size;
    },
  };
}
