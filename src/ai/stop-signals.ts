// The stop button: aborts a running generation's upstream request. In-process now; with Redis
// the same interface fans a stop out to whichever instance runs the generation.

export interface StopSignals {
  /** Registers a running generation; returns its signal and a function to forget it. */
  register(generationId: string): { signal: AbortSignal; release: () => void };
  /** Stops it if it runs here; true when it was running. */
  stop(generationId: string): boolean;
}

export class MemoryStopSignals implements StopSignals {
  private readonly running = new Map<string, AbortController>();

  register(generationId: string) {
    const controller = new AbortController();
    this.running.set(generationId, controller);
    return { signal: controller.signal, release: () => void this.running.delete(generationId) };
  }

  stop(generationId: string): boolean {
    const controller = this.running.get(generationId);
    if (!controller || controller.signal.aborted) return false;
    controller.abort();
    return true;
  }
}
