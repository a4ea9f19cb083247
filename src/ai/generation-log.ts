// Every event of every running (and recently finished) generation, in order, so a client can
// resume from any seq. In-process now; the interface is what a Redis Streams log implements for
// scale-out. Publishing is synchronous: a listener registered by `follow` sees every event after
// the replay, with no gap and no duplicate.
import type { Usage } from './provider.js';

export type GenerationEvent =
  | { type: 'start'; seq: number; generationId: string; messageId: string; conversationId: string }
  | { type: 'delta'; seq: number; generationId: string; messageId: string; delta: string }
  | {
      type: 'end';
      seq: number;
      generationId: string;
      messageId: string;
      conversationId: string;
      status: 'SENT';
      finishReason: string;
      usage: Usage;
      model: string;
    }
  | {
      type: 'error';
      seq: number;
      generationId: string;
      messageId: string;
      conversationId: string;
      status: 'FAILED';
      error: string;
      code: string;
    };

export type GenerationListener = (event: GenerationEvent) => void;

export interface GenerationLog {
  publish(event: GenerationEvent): void;
  /** Events after `afterSeq`; undefined when the log does not know the generation. */
  read(generationId: string, afterSeq: number): GenerationEvent[] | undefined;
  /** Replays events after `afterSeq` to `listener`, then every later one; returns unfollow. */
  follow(
    generationId: string,
    afterSeq: number,
    listener: GenerationListener,
  ): (() => void) | undefined;
  /** Every event of every generation (the realtime gateway). */
  onEvent(listener: GenerationListener): () => void;
}

interface Entry {
  events: GenerationEvent[];
  listeners: Set<GenerationListener>;
  finishedAt?: number;
}

const isTerminal = (event: GenerationEvent) => event.type === 'end' || event.type === 'error';

export class MemoryGenerationLog implements GenerationLog {
  private readonly entries = new Map<string, Entry>();
  private readonly global = new Set<GenerationListener>();
  private prunedAt = 0;

  /** Finished generations stay resumable this long. */
  constructor(private readonly retentionMs = 60 * 60_000) {}

  publish(event: GenerationEvent): void {
    this.prune();
    let entry = this.entries.get(event.generationId);
    if (!entry) {
      entry = { events: [], listeners: new Set() };
      this.entries.set(event.generationId, entry);
    }
    entry.events.push(event);
    if (isTerminal(event)) entry.finishedAt = Date.now();
    for (const listener of this.global) listener(event);
    for (const listener of entry.listeners) listener(event);
    if (isTerminal(event)) entry.listeners.clear();
  }

  read(generationId: string, afterSeq: number): GenerationEvent[] | undefined {
    return this.entries.get(generationId)?.events.filter((e) => e.seq > afterSeq);
  }

  follow(generationId: string, afterSeq: number, listener: GenerationListener) {
    const entry = this.entries.get(generationId);
    if (!entry) return undefined;
    for (const event of entry.events) if (event.seq > afterSeq) listener(event);
    if (entry.finishedAt !== undefined) return () => undefined;
    entry.listeners.add(listener);
    return () => void entry.listeners.delete(listener);
  }

  onEvent(listener: GenerationListener): () => void {
    this.global.add(listener);
    return () => void this.global.delete(listener);
  }

  /** Forgets finished generations past retention; at most once a second (it walks them all). */
  private prune() {
    const now = Date.now();
    if (now - this.prunedAt < 1_000) return;
    this.prunedAt = now;
    const cutoff = now - this.retentionMs;
    for (const [id, entry] of this.entries) {
      if (entry.finishedAt !== undefined && entry.finishedAt < cutoff) this.entries.delete(id);
    }
  }
}
