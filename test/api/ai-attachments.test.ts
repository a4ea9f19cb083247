// Issue 10, acceptance 4: the model sees a message's files. To the `openai` provider an image goes
// as an image_url part whose data is exactly the uploaded bytes (asserted at the fake upstream,
// which records the real SDK's request), a text file's content is inlined, a PDF is named, older
// images beyond the cap are named, a deleted message's file never goes; with AI_VISION=false
// images are named. A text file larger than the window (read from S3 with a range, never whole)
// is cut with a note and the answer completes inside the window. The local provider (the real
// test model, text only) gets an image named and a too-long file cut: answered, not failed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CUT_NOTE } from '../../src/ai/context.js';
import { estimateTokens } from '../../src/ai/provider.js';
import { S3Storage } from '../../src/storage/s3.storage.js';
import type { ByteRange, FileStorage } from '../../src/storage/storage.js';
import {
  createConversation,
  registerUser,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { startFakeAiServer, type FakeAiServer } from '../support/ai.js';
import type { RecordedPart, RecordedRequest } from '../support/fake-openai.js';
import { png, upload } from '../support/files.js';
import { startTestS3, type TestS3 } from '../support/s3-server.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { haveTestModel, skipNote, TEST_MODEL_PATH } from '../support/test-model.js';

interface Answer {
  id: string;
  status: string;
  content: string;
  finishReason: string | null;
  usage: { promptTokens: number; completionTokens: number } | null;
  metadata: { context?: { included: number; dropped: number } } | null;
}

/** Every read a storage was asked for: which file, which bytes. */
function recordingReads(storage: FileStorage) {
  const reads: Array<{ key: string; range: ByteRange | undefined }> = [];
  const read = storage.read.bind(storage);
  storage.read = (key, range) => {
    reads.push({ key, range });
    return read(key, range);
  };
  return reads;
}

const common = { AI_TITLES: 'false', UPLOAD_RATE_LIMIT: '1000', MESSAGE_RATE_LIMIT: '100000' };

async function newConversation(server: TestServer) {
  const user = await registerUser(server.api);
  const conversation = await createConversation(server.api, user, { title: 'Files' });
  return { user, conversationId: conversation.id };
}

async function uploaded(server: TestServer, user: RegisteredUser, bytes: Uint8Array, name: string) {
  const result = await upload(server.url, user.accessToken, bytes, name);
  expect(result.status).toBe(201);
  return result.body.data!;
}

async function send(
  server: TestServer,
  user: RegisteredUser,
  conversationId: string,
  body: { content: string; attachments?: string[]; ai?: boolean },
) {
  const sent = await server.api.post<
    Envelope<{ message: MessageData; generation?: { id: string; messageId: string } }>
  >(`/api/chat/conversations/${conversationId}/messages`, body, { token: user.accessToken });
  expect(sent.status).toBe(201);
  return sent.body.data!;
}

/** Sends and waits for the answer to end; returns it as stored. */
async function ask(
  server: TestServer,
  user: RegisteredUser,
  conversationId: string,
  body: { content: string; attachments?: string[] },
  timeoutMs = 15_000,
): Promise<Answer> {
  const { generation } = await send(server, user, conversationId, body);
  expect(generation).toBeDefined();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const page = await server.api.get<Envelope<{ messages: Answer[] }>>(
      `/api/chat/conversations/${conversationId}/messages?limit=100`,
      { token: user.accessToken },
    );
    const answer = page.body.data!.messages.find((m) => m.id === generation!.messageId);
    if (answer && answer.status !== 'SENDING') return answer;
    if (Date.now() > deadline) throw new Error('the answer did not end');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

type Sent = RecordedRequest['body']['messages'][number];

const textOf = (message: Sent) =>
  typeof message.content === 'string'
    ? message.content
    : message.content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n');

const imagesOf = (message: Sent) =>
  typeof message.content === 'string'
    ? []
    : message.content.filter(
        (p): p is Extract<RecordedPart, { type: 'image_url' }> => p.type === 'image_url',
      );

/** The upstream request whose last message holds `marker`. */
function requestAsking(ai: FakeAiServer, marker: string): RecordedRequest['body'] {
  const found = ai.fake.requests.filter((r) => textOf(r.body.messages.at(-1)!).includes(marker));
  expect(found).toHaveLength(1);
  return found[0]!.body;
}

const decodeDataUrl = (url: string) => {
  const match = /^data:([^;]+);base64,(.+)$/.exec(url);
  expect(match).not.toBeNull();
  return { mimeType: match![1], bytes: Buffer.from(match![2]!, 'base64') };
};

/** A small, well-formed PDF (a catalog and an empty page tree). */
const pdf = () =>
  Buffer.from(
    '%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n' +
      '2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n',
  );

describe('the openai provider with a vision model', () => {
  let ai: FakeAiServer;
  beforeAll(async () => {
    ai = await startFakeAiServer(common);
  });
  afterAll(async () => {
    await ai?.close();
  });

  it('sends an image as an image_url part carrying exactly the uploaded bytes', async () => {
    const { server } = ai;
    const { user, conversationId } = await newConversation(server);
    const bytes = png(64, 48);
    const file = await uploaded(server, user, bytes, 'cat.png');
    const answer = await ask(server, user, conversationId, {
      content: 'What is in picture one?',
      attachments: [file.id],
    });
    expect(answer.status).toBe('SENT');
    const question = requestAsking(ai, 'What is in picture one?').messages.at(-1)!;
    expect(question.role).toBe('user');
    const images = imagesOf(question);
    expect(images).toHaveLength(1);
    const sent = decodeDataUrl(images[0]!.image_url.url);
    expect(sent.mimeType).toBe('image/png');
    expect(sent.bytes.equals(bytes)).toBe(true);
    expect(textOf(question)).toBe('[image: cat.png, 64×48]\n\nWhat is in picture one?');
  });

  it('inlines a text file’s content before the question', async () => {
    const { server } = ai;
    const { user, conversationId } = await newConversation(server);
    const notes = '# Shopping\n\n- 3 apples\n- a loaf of rye bread\n';
    const file = await uploaded(server, user, Buffer.from(notes), 'notes.md');
    await ask(server, user, conversationId, {
      content: 'What should I buy?',
      attachments: [file.id],
    });
    const question = requestAsking(ai, 'What should I buy?').messages.at(-1)!;
    expect(question.content).toBe(
      `[file: notes.md, text/markdown, ${notes.length} B]\n${notes}\n[end of file]\n\nWhat should I buy?`,
    );
  });

  it('names a PDF with its type and size, without its bytes', async () => {
    const { server } = ai;
    const { user, conversationId } = await newConversation(server);
    const file = await uploaded(server, user, pdf(), 'report.pdf');
    await ask(server, user, conversationId, {
      content: 'Is the report long?',
      attachments: [file.id],
    });
    const question = requestAsking(ai, 'Is the report long?').messages.at(-1)!;
    expect(question.content).toBe(
      `[file: report.pdf, application/pdf, ${pdf().length} B — the model cannot read this type of file]` +
        '\n\nIs the report long?',
    );
  });

  it('sends at most 4 images, the question’s first: an older message’s image is named', async () => {
    const { server } = ai;
    const { user, conversationId } = await newConversation(server);
    const old = await uploaded(server, user, png(10, 10), 'old.png');
    await send(server, user, conversationId, {
      content: 'An earlier picture',
      attachments: [old.id],
      ai: false,
    });
    const pictures = [png(20, 10), png(21, 10), png(22, 10), png(23, 10)];
    // One by one: a message's files go in the order they were uploaded.
    const ids: string[] = [];
    for (const [i, bytes] of pictures.entries())
      ids.push((await uploaded(server, user, bytes, `new-${i}.png`)).id);
    const question = 'Compare these four';
    await ask(server, user, conversationId, { content: question, attachments: ids });
    const body = requestAsking(ai, question);
    const [earlier, asked] = body.messages.slice(-2);
    expect(imagesOf(asked!).map((p) => decodeDataUrl(p.image_url.url).bytes)).toEqual(pictures);
    expect(imagesOf(earlier!)).toEqual([]);
    expect(earlier!.content).toBe(
      `[image: old.png, image/png, 10×10, ${png(10, 10).length} B — not sent: only the 4 newest images go to the model]` +
        '\n\nAn earlier picture',
    );
  });

  it('never sends a deleted message’s file; a kept older message’s file goes', async () => {
    const { server } = ai;
    const { user, conversationId } = await newConversation(server);
    const kept = await uploaded(server, user, Buffer.from('kept-file-content\n'), 'kept.txt');
    const secret = await uploaded(server, user, Buffer.from('secret-file-content\n'), 'secret.txt');
    await send(server, user, conversationId, {
      content: 'A file to keep',
      attachments: [kept.id],
      ai: false,
    });
    const { message } = await send(server, user, conversationId, {
      content: 'A file to delete',
      attachments: [secret.id],
      ai: false,
    });
    const deleted = await server.api.delete(`/api/chat/messages/${message.id}`, {
      token: user.accessToken,
    });
    expect(deleted.status).toBe(200);
    await ask(server, user, conversationId, { content: 'What files do you see?' });
    const prompt = requestAsking(ai, 'What files do you see?').messages.map(textOf).join('\n');
    expect(prompt).toContain('kept-file-content');
    expect(prompt).not.toContain('secret');
    expect(prompt).not.toContain('A file to delete');
  });
});

describe('the openai provider with AI_VISION=false', () => {
  let ai: FakeAiServer;
  beforeAll(async () => {
    ai = await startFakeAiServer({ ...common, AI_VISION: 'false' });
  });
  afterAll(async () => {
    await ai?.close();
  });

  it('names the image in the text and sends no image part', async () => {
    const { server } = ai;
    const { user, conversationId } = await newConversation(server);
    const bytes = png(64, 48);
    const file = await uploaded(server, user, bytes, 'cat.png');
    const answer = await ask(server, user, conversationId, {
      content: 'Can you see it?',
      attachments: [file.id],
    });
    expect(answer.status).toBe('SENT');
    expect(requestAsking(ai, 'Can you see it?').messages.at(-1)!.content).toBe(
      `[image: cat.png, image/png, 64×48, ${(bytes.length / 1024).toFixed(1)} KB — this model cannot see images]` +
        '\n\nCan you see it?',
    );
  });
});

describe('a text file larger than the context window (openai provider, S3 storage)', () => {
  const WINDOW = 1_000;
  let ai: FakeAiServer;
  let s3: TestS3;
  let reads: ReturnType<typeof recordingReads>;
  beforeAll(async () => {
    s3 = await startTestS3();
    const storage = new S3Storage({
      bucket: s3.bucket,
      endpoint: s3.endpoint,
      region: 'us-east-1',
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      forcePathStyle: true,
    });
    reads = recordingReads(storage);
    ai = await startFakeAiServer(
      { ...common, ...s3.env, AI_CONTEXT_WINDOW: String(WINDOW), AI_MAX_OUTPUT_TOKENS: '200' },
      { storage },
    );
  });
  afterAll(async () => {
    await ai?.close();
    await s3?.dispose();
  });

  it('is cut with a note, read only as far as the window can hold, and answered', async () => {
    const { server } = ai;
    const { user, conversationId } = await newConversation(server);
    const lines = Array.from({ length: 60_000 }, (_, i) => `log line ${i}: all is well`);
    const bytes = Buffer.from(lines.join('\n'));
    expect(bytes.length).toBeGreaterThan(1_000_000);
    const file = await uploaded(server, user, bytes, 'server.log');
    const answer = await ask(server, user, conversationId, {
      content: 'What went wrong in the log?',
      attachments: [file.id],
    });
    expect(answer).toMatchObject({ status: 'SENT', finishReason: 'stop' });

    const body = requestAsking(ai, 'What went wrong in the log?');
    const question = textOf(body.messages.at(-1)!);
    expect(question.startsWith(`[file: server.log, text/plain, 1.`)).toBe(true);
    expect(question).toContain('\nlog line 0: all is well\nlog line 1: all is well\n');
    expect(question.endsWith(`\n${CUT_NOTE}\n\nWhat went wrong in the log?`)).toBe(true);
    expect(question).not.toContain(lines.at(-1));
    // Inside the window by the provider's own count, with the answer's tokens reserved.
    const tokens = body.messages.reduce((sum, m) => sum + 8 + estimateTokens(textOf(m)), 0);
    expect(tokens + body.max_tokens!).toBeLessThanOrEqual(WINDOW);
    // Only the beginning was fetched: 4 bytes a token of the window, not the 1 MB file.
    const fileReads = reads.filter((r) => r.key === file.filename);
    expect(fileReads).toEqual([{ key: file.filename, range: { start: 0, end: WINDOW * 4 - 1 } }]);
  });
});

describe.skipIf(!haveTestModel)(`the local provider (text only)${skipNote}`, () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({
      ...common,
      AI_PROVIDER: 'local',
      AI_MODEL_PATH: TEST_MODEL_PATH,
      AI_LOCAL_THREADS: '1',
      AI_MAX_OUTPUT_TOKENS: '16',
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('gets an image named in the text: answered, the name counted in its prompt', async () => {
    const plain = await newConversation(server);
    const without = await ask(server, plain.user, plain.conversationId, {
      content: 'Once upon a time',
    });
    const { user, conversationId } = await newConversation(server);
    const file = await uploaded(server, user, png(64, 48), 'a-picture-of-a-cat.png');
    const withImage = await ask(server, user, conversationId, {
      content: 'Once upon a time',
      attachments: [file.id],
    });
    expect(withImage.status).toBe('SENT');
    expect(withImage.usage!.completionTokens).toBeGreaterThan(0);
    // The same words, plus "[image: a-picture-of-a-cat.png, image/png, 64×48, … — …]".
    expect(withImage.usage!.promptTokens).toBeGreaterThan(without.usage!.promptTokens + 10);
  });

  it('cuts a text file longer than the model’s window: answered, not failed', async () => {
    const { user, conversationId } = await newConversation(server);
    const story = Array.from({ length: 2_000 }, (_, i) => `Tim had ${i} red balls.`).join(' ');
    const file = await uploaded(server, user, Buffer.from(story), 'story.txt');
    const answer = await ask(server, user, conversationId, {
      content: 'What did Tim have?',
      attachments: [file.id],
    });
    expect(answer.status).toBe('SENT');
    expect(answer.usage!.completionTokens).toBeGreaterThan(0);
    expect(answer.metadata?.context).toMatchObject({ included: 1, dropped: 0 });
    // The model's window is 512 tokens: the prompt filled it without overflowing it.
    expect(answer.usage!.promptTokens).toBeGreaterThan(200);
    expect(answer.usage!.promptTokens + 16).toBeLessThanOrEqual(512);
  });
});
