// Streams one answer from a provider's chunks into the generation log: a start event, deltas
// coalesced (the first at once, then at most one per 30 ms, each carrying only new text, gathered
// until a delta is worth its overhead or has waited 400 ms), then end or error, with a gap-free
// seq. It knows nothing of the database: progress and the first token are reported through
// callbacks.
import type { GenerationLog } from './generation-log.js';
import { ProviderError, type StreamChunk, type Usage } from './provider.js';

/** Deltas never go out more often than this (SPEC §7: at most one per ~30 ms per answer). */
export const COALESCE_MS = 30;
/**
 * A delta's ids and keys cost ~130 bytes on the wire whatever text it carries, so after the
 * first one a delta waits for this much text: the bytes sent then grow with the answer (under
 * 1.3× its own bytes), not with how finely the upstream cut it into tokens (bench/ttft.ts)…
 */
export const DELTA_TARGET_BYTES = 480;
/** …but no text waits longer than this to be shown (a slow model still reads as a stream). */
export const DELTA_MAX_WAIT_MS = 400;
/**
 * A delta never carries more than this many UTF-16 units (≤ 48 KB as JSON): an upstream that
 * sends a huge chunk at once is cut into several, so no event on Redis exceeds 64 KB.
 */
export const DELTA_MAX_UNITS = 8_192;

export interface RunIdentity {
  generationId: string;
  messageId: string;
  conversationId: string;
}

export interface RunResult {
  content: string;
  /** The seq of the last event appended (the terminal event takes the next). */
  lastSeq: number;
  usage: Usage;
  finishReason: string;
  stopped: boolean;
}

export interface RunHooks {
  onFirstToken?: () => void;
  /** The text so far, at most every `progressEveryMs` (persisting it as it grows). */
  onProgress?: (content: string) => void;
  progressEveryMs?: number;
}

/** Appends the start event; the caller then reads the provider's stream with `streamAnswer`. */
export function publishStart(log: GenerationLog, id: RunIdentity): void {
  log.append({ type: 'start', seq: 0, ...id });
}

export async function streamAnswer(
  chunks: AsyncIterable<StreamChunk>,
  log: GenerationLog,
  id: RunIdentity,
  hooks: RunHooks = {},
): Promise<RunResult> {
  let seq = 0;
  let content = '';
  let pending = '';
  let pendingBytes = 0;
  let pendingSince = 0;
  let lastFlush = 0;
  let timer: NodeJS.Timeout | undefined;
  let timerDue = 0;
  let lastProgress = Date.now();
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!pending) return;
    for (const piece of pieces(pending)) {
      log.append({
        type: 'delta',
        seq: ++seq,
        generationId: id.generationId,
        messageId: id.messageId,
        delta: piece,
      });
    }
    pending = '';
    pendingBytes = 0;
    lastFlush = Date.now();
    if (hooks.onProgress && Date.now() - lastProgress >= (hooks.progressEveryMs ?? 1_000)) {
      lastProgress = Date.now();
      hooks.onProgress(content);
    }
  };
  try {
    for await (const chunk of chunks) {
      if (chunk.type === 'delta') {
        const first = !content;
        const now = Date.now();
        content += chunk.text;
        if (!pending) pendingSince = now;
        pending += chunk.text;
        pendingBytes += Buffer.byteLength(chunk.text, 'utf8');
        if (first) {
          flush(); // the first text goes out at once: time to first token
          hooks.onFirstToken?.();
          continue;
        }
        // Later text: when enough has gathered (and 30 ms have passed), or when the oldest of it
        // has waited DELTA_MAX_WAIT_MS. So bytes sent grow with the answer, not with its tokens.
        const due =
          pendingBytes >= DELTA_TARGET_BYTES
            ? lastFlush + COALESCE_MS
            : pendingSince + DELTA_MAX_WAIT_MS;
        if (due <= now) flush();
        else if (!timer || due < timerDue) {
          clearTimeout(timer);
          timerDue = due;
          timer = setTimeout(flush, due - now);
        }
        continue;
      }
      flush();
      return {
        content,
        lastSeq: seq,
        usage: chunk.usage,
        finishReason: chunk.finishReason,
        stopped: chunk.finishReason === 'stopped',
      };
    }
    throw new ProviderError('The AI provider ended the answer without finishing it', 'upstream');
  } catch (error) {
    flush();
    throw new RunFailure(error, content, seq);
  } finally {
    clearTimeout(timer);
  }
}

/** The text cut into deltas of at most DELTA_MAX_UNITS, never inside a surrogate pair. */
function pieces(text: string): string[] {
  if (text.length <= DELTA_MAX_UNITS) return [text];
  const out: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + DELTA_MAX_UNITS, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1; // a high surrogate
    out.push(text.slice(start, end));
    start = end;
  }
  return out;
}

/** A run that broke off: the provider's error, and the text written before it. */
export class RunFailure extends Error {
  constructor(
    readonly reason: unknown,
    readonly partial: string,
    /** The seq of the last event appended before it broke off. */
    readonly lastSeq: number,
  ) {
    super(reason instanceof Error ? reason.message : String(reason));
    this.name = 'RunFailure';
  }
}
