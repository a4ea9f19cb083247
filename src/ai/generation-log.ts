// Every event of every running (and recently finished) generation, in seq order, so a client can
// resume from any seq on any instance: the interface, and its in-process implementation.
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

/** A terminal event without its seq (appendTerminal gives it one). */
export type TerminalEvent =
  | Omit<Extract<GenerationEvent, { type: 'end' }>, 'seq'>
  | Omit<Extract<GenerationEvent, { type: 'error' }>, 'seq'>;

export const isTerminal = (event: GenerationEvent) =>
  event.type === 'end' || event.type === 'error';

/**
 * Every event of every running (and recently finished) generation, by seq: one producer appends a
 * generation's events in seq order; any number of followers, in any process, read them. The
 * in-process log below is the embedded default; RedisGenerationLog (a Redis Stream per
 * generation) the scale-out one.
 */
export interface GenerationLog {
  /**
   * Appends the next event of a generation (seq order; one producer per generation). Never
   * throws: a log that cannot store it now keeps it and retries, in order.
   */
  append(event: GenerationEvent): void;
  /**
   * Ends a generation this process does not run (its process died: the lease sweeper, a worker
   * that finds it interrupted): the terminal event goes right after the last event stored, with
   * that seq + 1, unless a terminal event is stored already. Atomic: a producer still appending
   * cannot take the same seq.
   */
  appendTerminal(event: TerminalEvent): Promise<void>;
  /** Resolves once every event appended so far for the generation is stored. */
  flushed(generationId: string): Promise<void>;
  /** Events after `afterSeq`, in seq order; undefined when the log does not know the generation. */
  read(generationId: string, afterSeq: number): Promise<GenerationEvent[] | undefined>;
  /**
   * Calls `listener` with every event after `afterSeq` (those stored, then each new one), each
   * exactly once and in seq order, up to and including the terminal event. Resolves with the
   * function that stops following, or undefined when the log does not know the generation.
   */
  follow(
    generationId: string,
    afterSeq: number,
    listener: GenerationListener,
  ): Promise<(() => void) | undefined>;
  close(): Promise<void>;
}

interface Entry {
  events: GenerationEvent[];
  listeners: Set<GenerationListener>;
  finishedAt?: number;
}

export class MemoryGenerationLog implements GenerationLog {
  private readonly entries = new Map<string, Entry>();
  private prunedAt = 0;

  /** Finished generations stay resumable this long. */
  constructor(private readonly retentionMs = 60 * 60_000) {}

  append(event: GenerationEvent): void {
    this.prune();
    let entry = this.entries.get(event.generationId);
    if (!entry) {
      entry = { events: [], listeners: new Set() };
      this.entries.set(event.generationId, entry);
    }
    entry.events.push(event);
    if (isTerminal(event)) entry.finishedAt = Date.now();
    for (const listener of entry.listeners) listener(event);
    if (isTerminal(event)) entry.listeners.clear();
  }

  appendTerminal(event: TerminalEvent): Promise<void> {
    const events = this.entries.get(event.generationId)?.events ?? [];
    const last = events.at(-1);
    if (last && isTerminal(last)) return Promise.resolve();
    this.append({ ...event, seq: (last?.seq ?? -1) + 1 });
    return Promise.resolve();
  }

  flushed(): Promise<void> {
    return Promise.resolve();
  }

  read(generationId: string, afterSeq: number): Promise<GenerationEvent[] | undefined> {
    return Promise.resolve(this.readNow(generationId, afterSeq));
  }

  follow(generationId: string, afterSeq: number, listener: GenerationListener) {
    return Promise.resolve(this.followNow(generationId, afterSeq, listener));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private readNow(generationId: string, afterSeq: number) {
    return this.entries.get(generationId)?.events.filter((e) => e.seq > afterSeq);
  }

  /** Synchronous: nothing can be appended between the replay and the listener's registration. */
  private followNow(generationId: string, afterSeq: number, listener: GenerationListener) {
    const entry = this.entries.get(generationId);
    if (!entry) return undefined;
    for (const event of entry.events) if (event.seq > afterSeq) listener(event);
    if (entry.finishedAt !== undefined) return () => undefined;
    entry.listeners.add(listener);
    return () => void entry.listeners.delete(listener);
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
