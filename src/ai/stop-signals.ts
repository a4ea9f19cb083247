// The stop button: aborts a running generation's upstream request. In-process here; with Redis
// (redis-stop-signals.ts) a stop reaches whichever process runs the generation.

export interface StopSignals {
  /** Registers a running generation; returns its signal and a function to forget it. */
  register(generationId: string): { signal: AbortSignal; release: () => void };
  /** Stops it wherever it runs (whether it was running is for the database to say). */
  stop(generationId: string): Promise<void>;
}

export class MemoryStopSignals implements StopSignals {
  private readonly running = new Map<string, AbortController>();

  register(generationId: string) {
    const controller = new AbortController();
    this.running.set(generationId, controller);
    return { signal: controller.signal, release: () => void this.running.delete(generationId) };
  }

  stop(generationId: string): Promise<void> {
    this.running.get(generationId)?.abort();
    return Promise.resolve();
  }
}
