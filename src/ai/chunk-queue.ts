// An async iterable fed by callbacks: what a provider's callbacks (node-llama-cpp's onTextChunk)
// push, or what an upstream stream delivered before anyone read it, waits here in order.

export class ChunkQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private closed = false;
  private failure: { error: unknown } | undefined;

  /** A queue already holding these items and closed. */
  static of<T>(...items: T[]): ChunkQueue<T> {
    const queue = new ChunkQueue<T>();
    for (const item of items) queue.push(item);
    queue.close();
    return queue;
  }

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  /** No more items: the reader ends after the ones queued. */
  close(): void {
    this.closed = true;
    this.wake?.();
  }

  /** The reader throws `error` after the items queued before it. */
  fail(error: unknown): void {
    this.failure = { error };
    this.closed = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift()!;
        continue;
      }
      if (this.failure) throw this.failure.error;
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/**
 * Starts reading `source` now and keeps what arrives until it is read: an upstream request goes
 * out at once, while the caller still has other work to finish before it reads the answer.
 */
export function readEagerly<T>(source: AsyncIterable<T>): AsyncIterable<T> {
  const queue = new ChunkQueue<T>();
  void (async () => {
    try {
      for await (const item of source) queue.push(item);
      queue.close();
    } catch (error) {
      queue.fail(error);
    }
  })();
  return queue;
}
