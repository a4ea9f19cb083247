// The stop button of a cluster (scale-out): a stop reaches the process that runs the generation,
// wherever that is, and cannot be missed. Pub/sub brings it at once, but a message published
// while a subscriber reconnects is lost; so the stop is also a key, which every process polls for
// the generations it runs, and which `register` checks once (a stop sent before the answer began).
import type { Redis } from 'ioredis';
import type { StopSignals } from './stop-signals.js';

/** Every process subscribes to this channel; a message is the id of a generation to stop. */
export const STOPS_CHANNEL = 'parley:stops';
/** The stop key outlives any answer (a lease renews a running one; this only has to cover it). */
const STOP_KEY_TTL_MS = 60 * 60_000;
/** Well within the 500 ms a stop may take to abort the upstream when pub/sub missed it. */
const DEFAULT_POLL_MS = 200;

/** The stop key of a generation (hash-tagged by the id, like the generation's other keys). */
export const stopKey = (generationId: string) => `parley:gen:{${generationId}}:stop`;

export interface RedisStopSignalsOptions {
  /** Commands: SET/PUBLISH for stops, EXISTS for polls. */
  command: Redis;
  /** The process's shared SUBSCRIBE connection (resubscribes by itself after a reconnect). */
  subscriber: Redis;
  /** Redis failures while polling (and checking at register): reported here, never thrown. */
  onError(error: unknown): void;
  /** How often the stop keys of this process's generations are checked. */
  pollMs?: number;
}

export class RedisStopSignals implements StopSignals {
  private readonly running = new Map<string, AbortController>();
  private readonly pollMs: number;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** A failing Redis is reported once per outage, not five times a second. */
  private failing = false;
  private closed = false;

  constructor(private readonly options: RedisStopSignalsOptions) {
    this.pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  }

  /** Starts listening to the cluster's stops (resolves once subscribed). */
  async start(): Promise<void> {
    this.options.subscriber.on('message', this.onMessage);
    await this.options.subscriber.subscribe(STOPS_CHANNEL);
  }

  /** Stops listening and polling; the connections stay open (they are the process's). */
  async close(): Promise<void> {
    this.closed = true;
    this.stopPolling();
    const { subscriber } = this.options;
    subscriber.off('message', this.onMessage);
    // Only on a live connection: queued while Redis is away, UNSUBSCRIBE would wait for it, and
    // the connection's QUIT behind it too (a shutdown that hangs). Left subscribed, the channel's
    // messages find no handler.
    if (subscriber.status === 'ready') {
      await subscriber.unsubscribe(STOPS_CHANNEL).catch(() => undefined);
    }
  }

  register(generationId: string) {
    const controller = new AbortController();
    this.running.set(generationId, controller);
    // A stop may have come before the answer began (queued, or its job just picked up).
    void this.check([generationId]);
    this.startPolling();
    return {
      signal: controller.signal,
      release: () => {
        if (this.running.get(generationId) !== controller) return;
        this.running.delete(generationId);
        if (this.running.size === 0) this.stopPolling();
      },
    };
  }

  /**
   * Aborts a registration here at once (synchronously), then stores the stop key and publishes
   * the stop in one round trip. Rejects when Redis failed to take the stop.
   */
  async stop(generationId: string): Promise<void> {
    this.abort(generationId);
    const results = await this.options.command
      .pipeline()
      .set(stopKey(generationId), '1', 'PX', STOP_KEY_TTL_MS)
      .publish(STOPS_CHANNEL, generationId)
      .exec();
    const failed = results?.find(([error]) => error)?.[0];
    if (failed) throw failed;
  }

  private readonly onMessage = (channel: string, generationId: string) => {
    if (channel === STOPS_CHANNEL) this.abort(generationId);
  };

  private abort(generationId: string): void {
    this.running.get(generationId)?.abort();
  }

  private startPolling(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.poll(), this.pollMs);
    // Polling alone never keeps a process alive.
    this.timer.unref();
  }

  private stopPolling(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    // A slow Redis (up to the command timeout) must not pile polls up behind each other.
    if (this.polling) return;
    const ids = [...this.running].filter(([, c]) => !c.signal.aborted).map(([id]) => id);
    if (ids.length === 0) return;
    this.polling = true;
    try {
      await this.check(ids);
    } finally {
      this.polling = false;
    }
  }

  /** One pipeline of EXISTS; aborts those whose stop key is set. Never rejects. */
  private async check(ids: string[]): Promise<void> {
    try {
      const pipeline = this.options.command.pipeline();
      for (const id of ids) pipeline.exists(stopKey(id));
      const results = (await pipeline.exec()) ?? [];
      ids.forEach((id, at) => {
        const [error, exists] = results[at] ?? [];
        if (error) throw error;
        if (exists === 1) this.abort(id);
      });
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.options.onError(error);
      this.failing = true;
    }
  }
}
