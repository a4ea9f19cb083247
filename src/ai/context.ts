// Fits a conversation branch into a model's context window (SPEC §7): the system prompt and the
// answer's tokens are reserved first, then messages are taken newest first until the window is
// full; the oldest are the ones dropped. A message's files come with it (answer-attachments.ts
// prepares them): text inlined, images as image parts, the rest named. A message that does not
// fit whole keeps its own words first and its files get the room left, a text file cut with a
// note: a long file never overflows the window.
import type { Message } from '../db/schema.js';
import type { AiProvider, ChatMessage, ImagePart } from './provider.js';

/** Tokens a chat template adds around each message (role markers, separators): an allowance. */
const PER_MESSAGE_OVERHEAD = 8;
const SAFETY_MARGIN = 16;
/** A block counted apart from its neighbours may take a token or two more once joined to them. */
const PER_BLOCK_SLACK = 2;
/** Less room than this for a file's text and the file is only named: a few words help nobody. */
const MIN_FILE_TOKENS = 16;
/** No tokenizer makes a token of more characters than this (bounds the search for a cut). */
const MAX_CHARS_PER_TOKEN = 16;

export const CUT_NOTE = "[… cut: the file is longer than the model's context]";
const END_NOTE = '[end of file]';
const NO_ROOM = "not included: no room left in the model's context";

/** One file of a history message, as answer-attachments.ts prepared it for the model. */
export type ContextFile =
  /** Sent as an image part when there is room; `label` names it either way. */
  | { kind: 'image'; label: string; part: ImagePart }
  /** Inlined: `text` is its beginning, the whole file when `complete`. */
  | { kind: 'text'; label: string; text: string; complete: boolean }
  /** Only named: `label` says what it is and why its content is not shown. */
  | { kind: 'named'; label: string };

export interface FittedContext {
  messages: ChatMessage[];
  /** Ids of the history messages that made it in, oldest first. */
  includedIds: string[];
  /** How many messages of the branch did not fit (the oldest). */
  dropped: number;
  /** Output tokens actually allowed (at most half the window). */
  maxOutputTokens: number;
}

/** A stored message as the model reads it: its text and its files. */
export interface HistoryMessage {
  id: string;
  role: ChatMessage['role'];
  content: string;
  files: readonly ContextFile[];
}

/**
 * A branch (oldest first, ending with the message being answered) as chat messages, with the
 * files of each message from `files` (by message id). A message with files and no text stays.
 */
export function toChat(
  branch: readonly Message[],
  files: ReadonlyMap<string, readonly ContextFile[]> = new Map(),
): HistoryMessage[] {
  return branch.flatMap((m): HistoryMessage[] => {
    if (m.isDeleted) return [];
    const attached = files.get(m.id) ?? [];
    if (!m.content.trim() && attached.length === 0) return [];
    if (m.role === 'ASSISTANT') {
      return m.status === 'SENT' && m.content.trim()
        ? [{ id: m.id, role: 'assistant', content: m.content, files: [] }]
        : [];
    }
    const role = m.role === 'SYSTEM' ? 'system' : 'user';
    return [{ id: m.id, role, content: m.content, files: attached }];
  });
}

type Count = (text: string) => Promise<number>;

export async function fitContext(options: {
  provider: AiProvider;
  model: string;
  contextWindow: number;
  systemPrompt: string | undefined;
  history: HistoryMessage[];
  maxOutputTokens: number;
}): Promise<FittedContext> {
  const { provider, model, contextWindow } = options;
  const count: Count = (text) => provider.countTokens(text, model);
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

  const kept: Array<{ id: string; message: ChatMessage }> = [];
  for (let i = options.history.length - 1; i >= 0; i--) {
    const message = options.history[i]!;
    const whole = render(
      message,
      message.files.map(() => WHOLE),
    );
    const cost = await costOf(whole, count);
    if (cost <= budget) {
      kept.unshift({ id: message.id, message: whole });
      budget -= cost;
      continue;
    }
    // The question is always answered; an older message only if its own words still fit.
    const isQuestion = i === options.history.length - 1;
    const shrunk = await shrink(message, budget, count, isQuestion);
    if (shrunk) kept.unshift({ id: message.id, message: shrunk });
    break;
  }
  return {
    messages: [
      ...(system ? [{ role: 'system' as const, content: system }] : []),
      ...kept.map((k) => k.message),
    ],
    includedIds: kept.map((k) => k.id),
    dropped: options.history.length - kept.length,
    maxOutputTokens,
  };
}

/** How a file goes in: all of it (all that was read), its beginning, or only its name. */
type Choice = { kind: 'whole' } | { kind: 'cut'; text: string } | { kind: 'named' };
const WHOLE: Choice = { kind: 'whole' };
const NAMED: Choice = { kind: 'named' };

/**
 * A message too long for `budget`, made to fit: its own words and every file's name first, then
 * each file in order while there is room, an image as its part, a text file whole or its
 * beginning. Undefined for an older message whose words and names alone do not fit; the question
 * then keeps the end of its words, which is what it asks.
 */
async function shrink(
  message: HistoryMessage,
  budget: number,
  count: Count,
  isQuestion: boolean,
): Promise<ChatMessage | undefined> {
  const choices: Choice[] = message.files.map(() => NAMED);
  let room = budget - (await costOf(render(message, choices), count));
  if (room < 0) {
    if (!isQuestion) return undefined;
    return keepQuestionEnd(message, budget, count);
  }
  for (const [i, file] of message.files.entries()) {
    if (file.kind === 'named') continue;
    if (file.kind === 'image') {
      const cost = imageTokens(file.part);
      if (cost <= room) {
        choices[i] = WHOLE;
        room -= cost;
      }
      continue;
    }
    const named = await count(block(file, NAMED));
    const extra = (await count(block(file, WHOLE))) - named + PER_BLOCK_SLACK;
    if (extra <= room) {
      choices[i] = WHOLE;
      room -= extra;
      continue;
    }
    const frame = (await count(block(file, { kind: 'cut', text: '' }))) - named + PER_BLOCK_SLACK;
    if (room - frame < MIN_FILE_TOKENS) continue;
    const text = await keepHead(file.text, room - frame, count);
    choices[i] = { kind: 'cut', text };
    room -= frame + (await count(text));
  }
  return render(message, choices);
}

/** The question alone is longer than the window: its end, after its files' names if they fit. */
async function keepQuestionEnd(
  message: HistoryMessage,
  budget: number,
  count: Count,
): Promise<ChatMessage> {
  const room = budget - PER_MESSAGE_OVERHEAD;
  const names = message.files.map((file) => block(file, NAMED)).join('\n\n');
  const namesCost = names ? (await count(names)) + PER_BLOCK_SLACK : 0;
  const keepNames = names !== '' && namesCost <= room / 2;
  const tail = await keepTail(message.content, room - (keepNames ? namesCost : 0), count);
  return { role: message.role, content: keepNames ? `${names}\n\n${tail}` : tail };
}

/** The message as the provider gets it: files' blocks, then its words; images as parts. */
function render(message: HistoryMessage, choices: readonly Choice[]): ChatMessage {
  if (message.files.length === 0) return { role: message.role, content: message.content };
  const blocks = message.files.map((file, i) => block(file, choices[i]!));
  if (message.content.trim()) blocks.push(message.content);
  const text = blocks.join('\n\n');
  const images = message.files.flatMap((file, i) =>
    file.kind === 'image' && choices[i]!.kind === 'whole' ? [file.part] : [],
  );
  return {
    role: message.role,
    content: images.length ? [{ type: 'text', text }, ...images] : text,
  };
}

function block(file: ContextFile, choice: Choice): string {
  if (file.kind === 'named') return `[${file.label}]`;
  if (choice.kind === 'named') return `[${file.label} — ${NO_ROOM}]`;
  if (file.kind === 'image') return `[${file.label}]`;
  if (choice.kind === 'cut') return `[${file.label}]\n${choice.text}\n${CUT_NOTE}`;
  return `[${file.label}]\n${file.text}\n${file.complete ? END_NOTE : CUT_NOTE}`;
}

async function costOf(message: ChatMessage, count: Count): Promise<number> {
  if (typeof message.content === 'string')
    return (await count(message.content)) + PER_MESSAGE_OVERHEAD;
  let cost = PER_MESSAGE_OVERHEAD;
  for (const part of message.content)
    cost += part.type === 'text' ? await count(part.text) : imageTokens(part);
  return cost;
}

/**
 * What an image costs, by OpenAI's published formula for high detail (fit in 2048×2048, shortest
 * side to 768, 170 tokens a 512-pixel tile plus 85): the most most vision models charge. An image
 * of unknown size is counted at the formula's largest.
 */
export function imageTokens(image: { width?: number | undefined; height?: number | undefined }) {
  let { width, height } = image;
  if (!width || !height) return 85 + 170 * 8;
  const fit = Math.min(1, 2048 / Math.max(width, height));
  width *= fit;
  height *= fit;
  const shorten = Math.min(1, 768 / Math.min(width, height));
  width *= shorten;
  height *= shorten;
  return 85 + 170 * Math.ceil(width / 512) * Math.ceil(height / 512);
}

/** The longest end of `text` that fits in `tokens` (binary search on characters). */
async function keepTail(text: string, tokens: number, count: Count): Promise<string> {
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

/** The longest beginning of `text` that fits in `tokens`. */
async function keepHead(text: string, tokens: number, count: Count): Promise<string> {
  const chars = [...text.slice(0, tokens * MAX_CHARS_PER_TOKEN)];
  // The slice may have split a surrogate pair: its first half alone is no character.
  if (/^[\uD800-\uDBFF]$/.test(chars.at(-1) ?? '')) chars.pop();
  let low = 0;
  let high = chars.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if ((await count(chars.slice(0, mid).join(''))) <= tokens) low = mid;
    else high = mid - 1;
  }
  return chars.slice(0, low).join('');
}
