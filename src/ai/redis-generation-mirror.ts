// The follower side of the Redis generation log: per generation, one local copy of its stream
// that every follower in this process shares, kept up to date from the pub/sub channel, with
// XRANGE filling whatever pub/sub lost (a gap, a reconnect, a quiet spell), so each follower gets
// every event after its seq exactly once, in order, through the end.
import type { Redis } from 'ioredis';
import { isTerminal, type GenerationEvent, type GenerationListener } from './generation-log.js';
import {
  liveChannel,
  parseLiveMessage,
  readStream,
  type StoredEvent,
} from './redis-generation-stream.js';
import { within } from '../utils/within.js';

/** As long as a command may take (src/infra/redis.ts): then SUBSCRIBE counts as failed. */
const SUBSCRIBE_TIMEOUT_MS = 2_000;

export interface MirrorOptions {
  command: Redis;
  subscriber: Redis;
  onError: (error: unknown) => void;
  /** From an event's append to its arrival here, for events that arrive live. */
  onRelayed?: (lagMs: number) => void;
  /** How long a finished (or unfollowed) generation stays mirrored, for fast resumes. */
  lingerMs: number;
  /** A running generation silent this long is read again (pub/sub loses messages on reconnects). */
  idleMs: number;
}

interface Follower {
  listener: GenerationListener;
  /** The last seq it was given: nothing at or below it is given again. */
  last: number;
}

class Mirror {
  /** Every event from seq 0 on: events[seq]. */
  readonly events: GenerationEvent[] = [];
  readonly followers = new Set<Follower>();
  readonly channel: string;
  /** Resolves once subscribed and read (false: the stream does not exist). */
  ready!: Promise<boolean>;
  loaded = false;
  ended = false;
  /** The read under way, which runs again when asked for meanwhile (`again`). */
  filling?: Promise<void>;
  again = false;
  /** A read failed: the next sweep reads again. */
  stale = false;
  lastHeard = Date.now();
  dropTimer?: NodeJS.Timeout;

  constructor(readonly generationId: string) {
    this.channel = liveChannel(generationId);
  }

  get live() {
    return this.loaded && !this.ended;
  }
}

export class GenerationMirrors {
  private readonly byId = new Map<string, Mirror>();
  private readonly byChannel = new Map<string, Mirror>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: MirrorOptions) {
    options.subscriber.on('message', this.onMessage);
    options.subscriber.on('ready', this.onReady);
    this.sweeper = setInterval(() => this.sweep(), Math.min(1_000, options.idleMs)).unref();
  }

  async follow(
    generationId: string,
    afterSeq: number,
    listener: GenerationListener,
  ): Promise<(() => void) | undefined> {
    if (this.closed) throw new Error('The generation log is closed');
    let mirror = this.byId.get(generationId);
    if (!mirror) {
      mirror = new Mirror(generationId);
      this.byId.set(generationId, mirror);
      this.byChannel.set(mirror.channel, mirror);
      mirror.ready = this.load(mirror);
    }
    if (!(await mirror.ready)) return undefined;
    return this.attach(mirror, { listener, last: afterSeq });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    this.options.subscriber.off('message', this.onMessage);
    this.options.subscriber.off('ready', this.onReady);
    const channels = [...this.byChannel.keys()];
    for (const mirror of this.byId.values()) clearTimeout(mirror.dropTimer);
    this.byId.clear();
    this.byChannel.clear();
    if (channels.length) {
      await within(this.options.subscriber.unsubscribe(...channels), 1_000).catch(() => false);
    }
  }

  /** Subscribed first, then read: whatever is published in between is in the read or comes after. */
  private async load(mirror: Mirror): Promise<boolean> {
    try {
      const subscribing = this.options.subscriber.subscribe(mirror.channel);
      if (!(await within(subscribing, SUBSCRIBE_TIMEOUT_MS))) {
        // The name ioredis gives a command that got no answer: callers map it to 503.
        throw new Error(`Command timed out: SUBSCRIBE ${mirror.channel}`);
      }
      await this.fill(mirror);
    } catch (error) {
      this.drop(mirror);
      throw error;
    }
    if (mirror.events.length === 0) {
      this.drop(mirror);
      return false;
    }
    mirror.loaded = true;
    mirror.lastHeard = Date.now();
    return true;
  }

  /** Replays what the follower has not seen, then keeps it until the end or until it leaves. */
  private attach(mirror: Mirror, follower: Follower): () => void {
    for (const event of mirror.events) this.deliver(follower, event);
    if (mirror.ended || this.byId.get(mirror.generationId) !== mirror) return () => undefined;
    mirror.followers.add(follower);
    clearTimeout(mirror.dropTimer);
    return () => {
      if (!mirror.followers.delete(follower)) return;
      if (mirror.followers.size === 0 && !mirror.ended) this.lingerThenDrop(mirror);
    };
  }

  /** Takes the next event; false when it is ahead of the next one (a gap: read the stream). */
  private ingest(mirror: Mirror, { event, at }: StoredEvent, relayed: boolean): boolean {
    if (mirror.ended || event.seq < mirror.events.length) return true;
    if (event.seq > mirror.events.length) return false;
    mirror.events.push(event);
    mirror.lastHeard = Date.now();
    if (relayed) this.options.onRelayed?.(Math.max(0, Date.now() - at));
    for (const follower of mirror.followers) this.deliver(follower, event);
    if (isTerminal(event)) {
      mirror.ended = true;
      mirror.followers.clear();
      this.lingerThenDrop(mirror);
    }
    return true;
  }

  private deliver(follower: Follower, event: GenerationEvent) {
    if (event.seq <= follower.last) return;
    follower.last = event.seq;
    try {
      follower.listener(event);
    } catch (error) {
      this.options.onError(error);
    }
  }

  /**
   * Reads the stream from the next seq. One read at a time per mirror; asked for during one, it
   * reads once more after it, so whatever prompted the ask is read.
   */
  private fill(mirror: Mirror): Promise<void> {
    if (mirror.filling) {
      mirror.again = true;
      return mirror.filling;
    }
    const run = async () => {
      try {
        do {
          mirror.again = false;
          const stored = await readStream(
            this.options.command,
            mirror.generationId,
            mirror.events.length,
          );
          for (const entry of stored) if (!this.ingest(mirror, entry, mirror.loaded)) break;
        } while (mirror.again && !mirror.ended);
        mirror.stale = false;
        mirror.lastHeard = Date.now();
      } finally {
        mirror.filling = undefined;
      }
    };
    mirror.filling = run();
    return mirror.filling;
  }

  /** A read of a running generation; a failure is retried by the sweep. */
  private refresh(mirror: Mirror) {
    this.fill(mirror).catch((error: unknown) => {
      mirror.stale = true;
      this.options.onError(error);
    });
  }

  private readonly onMessage = (channel: string, raw: string) => {
    const mirror = this.byChannel.get(channel);
    if (!mirror) return;
    let stored: StoredEvent;
    try {
      stored = parseLiveMessage(raw);
    } catch (error) {
      this.options.onError(error);
      return;
    }
    if (this.ingest(mirror, stored, true)) return;
    // While the first read runs, a gap is its business: it reads once more.
    if (mirror.loaded) this.refresh(mirror);
    else if (mirror.filling) mirror.again = true;
  };

  /**
   * The subscriber is back: messages published while it was away are lost, so every running
   * generation is read again, once ioredis's own re-SUBSCRIBEs are through (the PING's reply
   * comes after theirs on that connection): nothing is published unheard after the read.
   */
  private readonly onReady = () => {
    this.options.subscriber.ping().then(() => {
      for (const mirror of this.byId.values()) if (mirror.live) this.refresh(mirror);
    }, this.options.onError);
  };

  /** Quiet running generations (a message lost without a reconnect) and failed reads: read again. */
  private sweep() {
    const now = Date.now();
    for (const mirror of this.byId.values()) {
      if (!mirror.live || mirror.filling) continue;
      if (mirror.stale || now - mirror.lastHeard >= this.options.idleMs) this.refresh(mirror);
    }
  }

  private lingerThenDrop(mirror: Mirror) {
    clearTimeout(mirror.dropTimer);
    mirror.dropTimer = setTimeout(() => this.drop(mirror), this.options.lingerMs).unref();
  }

  /** Forgets a mirror and unsubscribes (same connection, so after any SUBSCRIBE of it). */
  private drop(mirror: Mirror) {
    if (this.byId.get(mirror.generationId) !== mirror) return;
    clearTimeout(mirror.dropTimer);
    this.byId.delete(mirror.generationId);
    this.byChannel.delete(mirror.channel);
    mirror.followers.clear();
    this.options.subscriber.unsubscribe(mirror.channel).catch(this.options.onError);
  }
}
