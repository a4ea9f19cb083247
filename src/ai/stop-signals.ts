// The stop button: aborts a running generation's upstream request. In-process here;
// RedisStopSignals (redis-stop-signals.ts) stops it on whichever process of the cluster runs it.

export interface StopSignals {
  /** Registers a running generation; returns its signal and a function to forget it. */
  register(generationId: string): { signal: AbortSignal; release: () => void };
  /**
   * Stops the generation wherever it runs. A registration in this process is aborted before
   * this returns (synchronously); whether it was running at all is the database's to say.
   */
  stop(generationId: string): Promise<void>;
}

export class MemoryStopSignals implements StopSignals {
  private readonly running = new Map<string, AbortController>();

  register(generationId: string) {
    const controller = new AbortController();
    this.running.set(generationId, controller);
    return {
      signal: controller.signal,
      release: () => {
        // A later registration of the same id is not this one's to forget.
        if (this.running.get(generationId) === controller) this.running.delete(generationId);
      },
    };
  }

  stop(generationId: string): Promise<void> {
    this.running.get(generationId)?.abort();
    return Promise.resolve();
  }
}
