// Context fitting with files (issue 10, SPEC §7): a message with files and no text still goes to
// the model; a text file too long for the window is cut to its beginning with a note and the
// whole stays inside the window; the question's own words come before its files; an older
// message whose file does not fit keeps its words and the file's beginning; an image with no
// room left is named instead. Tokens counted by the openai provider's own estimate.
import { describe, expect, it } from 'vitest';
import {
  CUT_NOTE,
  fitContext,
  imageTokens,
  toChat,
  type ContextFile,
  type HistoryMessage,
} from '../../src/ai/context.js';
import {
  estimateTokens,
  type ChatMessage,
  type ContentPart,
  type ImagePart,
} from '../../src/ai/provider.js';
import { OpenAiProvider } from '../../src/ai/providers/openai.provider.js';
import type { Message } from '../../src/db/schema.js';

const provider = new OpenAiProvider({
  apiKey: 'sk-unused',
  baseURL: 'http://127.0.0.1:9/v1',
  model: 'm',
  timeoutMs: 1_000,
  maxRetries: 0,
  contextWindow: 1_000,
});

function row(overrides: Partial<Message>): Message {
  const now = new Date();
  return {
    id: 'm1',
    conversationId: 'c',
    userId: 'u',
    content: '',
    role: 'USER',
    type: 'TEXT',
    metadata: null,
    parentId: null,
    threadId: null,
    status: 'SENT',
    isEdited: false,
    isDeleted: false,
    model: null,
    usage: null,
    finishReason: null,
    createdAt: now,
    updatedAt: now,
    editedAt: null,
    clientMessageId: null,
    alternativeOf: null,
    superseded: false,
    chosen: null,
    ...overrides,
  };
}

const textFile = (text: string, complete = true): ContextFile => ({
  kind: 'text',
  label: 'file: notes.txt, text/plain',
  text,
  complete,
});
const image: ImagePart = {
  type: 'image',
  mimeType: 'image/png',
  data: Buffer.from('not really a png').toString('base64'),
  name: 'cat.png',
  width: 640,
  height: 480,
};

/** What the request costs by the same estimate, images by their formula, 8 a message. */
const promptTokens = (messages: ChatMessage[]) =>
  messages.reduce((sum, m) => {
    const parts: ContentPart[] =
      typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    const cost = (p: ContentPart) => (p.type === 'image' ? imageTokens(p) : estimateTokens(p.text));
    return sum + 8 + parts.reduce((s, p) => s + cost(p), 0);
  }, 0);

const fit = (history: HistoryMessage[], contextWindow = 1_000) =>
  fitContext({
    provider,
    model: 'm',
    contextWindow,
    systemPrompt: undefined,
    history,
    maxOutputTokens: 200,
  });

describe('toChat with files', () => {
  it('keeps a message with files and no text, and leaves deleted ones out with their files', () => {
    const files = new Map([
      ['blank', [textFile('hello')]],
      ['deleted', [textFile('secret')]],
    ]);
    const chat = toChat(
      [
        row({ id: 'blank', content: '  ' }),
        row({ id: 'deleted', content: 'gone', isDeleted: true }),
        row({ id: 'empty', content: '' }),
      ],
      files,
    );
    expect(chat.map((m) => m.id)).toEqual(['blank']);
    expect(chat[0]!.files).toEqual([textFile('hello')]);
  });
});

describe('fitContext with files', () => {
  it('sends a text file whole when it fits, closed by an end marker, before the question', async () => {
    const fitted = await fit([
      { id: 'q', role: 'user', content: 'Summarise it', files: [textFile('Line one.\nLine two.')] },
    ]);
    expect(fitted.messages).toEqual([
      {
        role: 'user',
        content:
          '[file: notes.txt, text/plain]\nLine one.\nLine two.\n[end of file]\n\nSummarise it',
      },
    ]);
  });

  it('cuts a text file longer than the window to its beginning, with the note, inside the window', async () => {
    const text = Array.from({ length: 2_000 }, (_, i) => `line ${i} of the file`).join('\n');
    const fitted = await fit([
      { id: 'old', role: 'user', content: 'an older message', files: [] },
      { id: 'q', role: 'user', content: 'What is in the file?', files: [textFile(text)] },
    ]);
    const content = fitted.messages.at(-1)!.content as string;
    expect(content.startsWith('[file: notes.txt, text/plain]\nline 0 of the file\nline 1')).toBe(
      true,
    );
    expect(content).toContain(`\n${CUT_NOTE}\n\nWhat is in the file?`);
    expect(content).not.toContain('line 1999 of the file');
    // The question fills the window: the older message is left out, and nothing overflows.
    expect(fitted.includedIds).toEqual(['q']);
    expect(promptTokens(fitted.messages) + fitted.maxOutputTokens).toBeLessThanOrEqual(1_000);
    // It is cut close to the room there was, not to a sliver.
    expect(promptTokens(fitted.messages) + fitted.maxOutputTokens).toBeGreaterThan(900);
  });

  it('marks a file read only in part as cut even when what was read fits', async () => {
    const fitted = await fit([
      { id: 'q', role: 'user', content: 'Read this', files: [textFile('the beginning', false)] },
    ]);
    expect(fitted.messages[0]!.content).toBe(
      `[file: notes.txt, text/plain]\nthe beginning\n${CUT_NOTE}\n\nRead this`,
    );
  });

  it('keeps an older message’s words and its file’s beginning when only that much fits', async () => {
    const text = 'x'.repeat(10_000);
    const fitted = await fit([
      { id: 'oldest', role: 'user', content: 'first', files: [] },
      { id: 'file', role: 'user', content: 'Here is my file', files: [textFile(text)] },
      { id: 'q', role: 'user', content: 'What does it say?', files: [] },
    ]);
    expect(fitted.includedIds).toEqual(['file', 'q']);
    expect(fitted.dropped).toBe(1);
    const older = fitted.messages[0]!.content as string;
    expect(older).toMatch(/^\[file: notes\.txt, text\/plain\]\nx{500,}\n/);
    expect(older.endsWith(`${CUT_NOTE}\n\nHere is my file`)).toBe(true);
    expect(fitted.messages[1]).toEqual({ role: 'user', content: 'What does it say?' });
    expect(promptTokens(fitted.messages) + fitted.maxOutputTokens).toBeLessThanOrEqual(1_000);
  });

  it('sends an image as a part when it fits, and names it when the window has no room for it', async () => {
    const files: ContextFile[] = [{ kind: 'image', label: 'image: cat.png, 640×480', part: image }];
    const roomy = await fit([{ id: 'q', role: 'user', content: 'What is this?', files }]);
    expect(roomy.messages[0]!.content).toEqual([
      { type: 'text', text: '[image: cat.png, 640×480]\n\nWhat is this?' },
      image,
    ]);
    // 640×480 costs 2 tiles: 425 tokens, more than a 600-token window leaves after 200 out.
    expect(imageTokens(image)).toBe(425);
    const tight = await fit([{ id: 'q', role: 'user', content: 'What is this?', files }], 600);
    expect(tight.messages[0]!.content).toBe(
      "[image: cat.png, 640×480 — not included: no room left in the model's context]\n\nWhat is this?",
    );
  });

  it('keeps the end of a question longer than the window, its files named before it', async () => {
    const question = `${'blah '.repeat(2_000)}so what is the answer?`;
    const fitted = await fit([
      { id: 'q', role: 'user', content: question, files: [textFile('never read')] },
    ]);
    const content = fitted.messages[0]!.content as string;
    expect(
      content.startsWith(
        "[file: notes.txt, text/plain — not included: no room left in the model's context]\n\n blah",
      ),
    ).toBe(true);
    expect(content.endsWith('so what is the answer?')).toBe(true);
    expect(promptTokens(fitted.messages) + fitted.maxOutputTokens).toBeLessThanOrEqual(1_000);
  });
});
