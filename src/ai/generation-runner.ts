// Streams one answer from a provider's chunks into the generation log: a start event, deltas coalesced
// to at most one per ~30 ms (each carrying only new text), then end or error, with a gap-free
// seq. It knows nothing of the database: progress and the first token are reported through
// callbacks.
import type { GenerationLog } from './generation-log.js';
import { ProviderError, type StreamChunk, type Usage } from './provider.js';

export const COALESCE_MS = 30;

export interface RunIdentity {
  generationId: string;
  messageId: string;
  conversationId: string;
}

export interface RunResult {
  content: string;
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

/** Publishes the start event; the caller then reads the provider's stream with `streamAnswer`. */
export function publishStart(log: GenerationLog, id: RunIdentity): void {
  log.publish({ type: 'start', seq: 0, ...id });
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
  let lastFlush = 0;
  let timer: NodeJS.Timeout | undefined;
  let lastProgress = Date.now();
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (!pending) return;
    log.publish({
      type: 'delta',
      seq: ++seq,
      generationId: id.generationId,
      messageId: id.messageId,
      delta: pending,
    });
    pending = '';
    lastFlush = Date.now();
    if (hooks.onProgress && Date.now() - lastProgress >= (hooks.progressEveryMs ?? 1_000)) {
      lastProgress = Date.now();
      hooks.onProgress(content);
    }
  };
  try {
    for await (const chunk of chunks) {
      if (chunk.type === 'delta') {
        if (!content) hooks.onFirstToken?.();
        content += chunk.text;
        pending += chunk.text;
        const since = Date.now() - lastFlush;
        // The first text goes out at once (time to first token); later text at most every 30 ms.
        if (since >= COALESCE_MS) flush();
        else timer ??= setTimeout(flush, COALESCE_MS - since);
        continue;
      }
      flush();
      return {
        content,
        usage: chunk.usage,
        finishReason: chunk.finishReason,
        stopped: chunk.finishReason === 'stopped',
      };
    }
    throw new ProviderError('The AI provider ended the answer without finishing it', 'upstream');
  } catch (error) {
    flush();
    throw new RunFailure(error, content);
  } finally {
    clearTimeout(timer);
  }
}

/** A run that broke off: the provider's error, and the text written before it. */
export class RunFailure extends Error {
  constructor(
    readonly reason: unknown,
    readonly partial: string,
  ) {
    super(reason instanceof Error ? reason.message : String(reason));
    this.name = 'RunFailure';
  }
}

/** The seq the terminal event (end or error) takes: one past the last one published. */
export function terminalSeq(log: GenerationLog, generationId: string): number {
  const events = log.read(generationId, -1) ?? [];
  return (events.at(-1)?.seq ?? 0) + 1;
}
