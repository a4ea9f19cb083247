// Fits a conversation branch into a model's context window (SPEC §7): the system prompt and the
// answer's tokens are reserved first, then messages are taken newest first until the window is
// full; the oldest are the ones dropped.
import type { Message } from '../db/schema.js';
import type { AiProvider, ChatMessage } from './provider.js';

/** Tokens a chat template adds around each message (role markers, separators): an allowance. */
const PER_MESSAGE_OVERHEAD = 8;
const SAFETY_MARGIN = 16;

export interface FittedContext {
  messages: ChatMessage[];
  /** Ids of the history messages that made it in, oldest first. */
  includedIds: string[];
  /** How many messages of the branch did not fit (the oldest). */
  dropped: number;
  /** Output tokens actually allowed (at most half the window). */
  maxOutputTokens: number;
}

/** A chat message and the stored message it came from. */
export type HistoryMessage = ChatMessage & { id: string };

/** A branch (oldest first, ending with the message being answered) as chat messages. */
export function toChat(branch: readonly Message[]): HistoryMessage[] {
  return branch.flatMap((m): HistoryMessage[] => {
    if (m.isDeleted || !m.content.trim()) return [];
    if (m.role === 'ASSISTANT') {
      return m.status === 'SENT' ? [{ id: m.id, role: 'assistant', content: m.content }] : [];
    }
    return [{ id: m.id, role: m.role === 'SYSTEM' ? 'system' : 'user', content: m.content }];
  });
}

export async function fitContext(options: {
  provider: AiProvider;
  model: string;
  contextWindow: number;
  systemPrompt: string | undefined;
  history: HistoryMessage[];
  maxOutputTokens: number;
}): Promise<FittedContext> {
  const { provider, model, contextWindow } = options;
  const count = (text: string) => provider.countTokens(text, model);
  const maxOutputTokens = Math.max(
    1,
    Math.min(options.maxOutputTokens, Math.floor(contextWindow / 2)),
  );
  const system = options.systemPrompt?.trim();
  let budget =
    contextWindow -
    maxOutputTokens -
    SAFETY_MARGIN -
    (system ? (await count(system)) + PER_MESSAGE_OVERHEAD : 0);

  const kept: HistoryMessage[] = [];
  for (let i = options.history.length - 1; i >= 0; i--) {
    const message = options.history[i]!;
    const cost = (await count(message.content)) + PER_MESSAGE_OVERHEAD;
    if (cost <= budget) {
      kept.unshift(message);
      budget -= cost;
      continue;
    }
    if (kept.length === 0) {
      // The message being answered alone is too long: keep its end, which is what it asks.
      kept.unshift({
        ...message,
        content: await keepTail(message.content, budget - PER_MESSAGE_OVERHEAD, count),
      });
    }
    break;
  }
  return {
    messages: [
      ...(system ? [{ role: 'system' as const, content: system }] : []),
      ...kept.map(({ role, content }) => ({ role, content })),
    ],
    includedIds: kept.map((m) => m.id),
    dropped: options.history.length - kept.length,
    maxOutputTokens,
  };
}

/** The longest end of `text` that fits in `tokens` (binary search on characters). */
async function keepTail(
  text: string,
  tokens: number,
  count: (text: string) => Promise<number>,
): Promise<string> {
  const chars = [...text];
  let low = 0;
  let high = chars.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if ((await count(chars.slice(chars.length - mid).join(''))) <= Math.max(1, tokens)) low = mid;
    else high = mid - 1;
  }
  return chars.slice(chars.length - low).join('');
}
