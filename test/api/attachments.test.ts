// Attachments (SPEC §5, issue 10): uploads sniffed and limited, private to the uploader and the
// conversation they were sent in, served safely — on local disk and on a real S3-compatible
// server (s3rver, started by the test on loopback), with the same tests.
import { sql } from 'drizzle-orm';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createId } from '../../src/utils/ids.js';
import {
  createConversation,
  registerUser,
  type MessageData,
  type RegisteredUser,
} from '../factories.js';
import type { Envelope } from '../support/api-client.js';
import { executable, png, upload, uploadStreamed, type AttachmentData } from '../support/files.js';
import { freePort } from '../support/redis-server.js';
import { filesUnder, startTestS3, type TestS3 } from '../support/s3-server.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { connectAs } from '../support/sockets.js';
import { selectRows } from '../support/sql.js';

const MAX_BYTES = 256 * 1024;
const HOUR = 3_600_000;

interface SentMessage extends MessageData {
  type: string;
  attachments: AttachmentData[];
}

describe.each(['local', 's3'] as const)('attachments on %s storage', (kind) => {
  let server: TestServer;
  let s3: TestS3 | undefined;
  beforeAll(async () => {
    if (kind === 's3') s3 = await startTestS3();
    server = await startTestServer({
      UPLOAD_MAX_BYTES: String(MAX_BYTES),
      UPLOAD_URL_TTL: '2s',
      UPLOAD_RATE_LIMIT: '10000',
      MESSAGE_RATE_LIMIT: '10000',
      ...s3?.env,
    });
  });
  afterAll(async () => {
    await server?.close();
    await s3?.dispose();
  });

  const uploadsDir = () => path.join(server.config.DATA_DIR, 'uploads');
  /** Every stored file: local (including unfinished writes) or the bucket's objects. */
  const stored = async () =>
    kind === 'local' ? (await filesUnder(uploadsDir())).sort() : (await s3!.objectKeys()).sort();
  const rowCount = async () =>
    (
      await selectRows<{ n: number }>(
        server.container.database.db,
        sql`select count(*)::int as n from attachments`,
      )
    )[0]!.n;
  const auth = (user: RegisteredUser) => ({ authorization: `Bearer ${user.accessToken}` });

  /** GET …/content: the bytes, following S3's redirect to its presigned link (without our token). */
  async function fetchContent(user: RegisteredUser, attachment: { url: string }) {
    const first = await fetch(`${server.url}${attachment.url}`, {
      headers: auth(user),
      redirect: 'manual',
    });
    if (kind === 'local' || first.status !== 302) return { first, final: first };
    const location = first.headers.get('location')!;
    return { first, final: await fetch(location), location };
  }

  async function sendWith(
    user: RegisteredUser,
    conversationId: string,
    attachments: string[],
    content = 'see attached',
  ) {
    return server.api.post<Envelope<{ message: SentMessage }>>(
      `/api/chat/conversations/${conversationId}/messages`,
      { content, attachments },
      { token: user.accessToken },
    );
  }

  it('stores a real PNG as image/png with its width and height, and gives its bytes back', async () => {
    const user = await registerUser(server.api);
    const image = png(37, 23);
    const response = await upload(server.url, user.accessToken, image, 'photo.png', 'text/plain');
    expect(response.status).toBe(201);
    const attachment = response.body.data!;
    expect(attachment).toMatchObject({
      originalName: 'photo.png',
      mimeType: 'image/png',
      size: image.length,
      metadata: { width: 37, height: 23 },
      url: `/api/attachments/${attachment.id}/content`,
    });
    expect(attachment.filename).toMatch(/^[a-z0-9]+\.png$/);
    expect(await stored()).toContain(
      kind === 'local' ? attachment.filename : `uploads/${attachment.filename}`,
    );

    const metadata = await server.api.get<Envelope<AttachmentData>>(
      `/api/attachments/${attachment.id}`,
      { token: user.accessToken },
    );
    expect(metadata.body.data).toEqual(attachment);
    const { first, final } = await fetchContent(user, attachment);
    expect(first.status).toBe(kind === 'local' ? 200 : 302);
    expect(final.status).toBe(200);
    expect(final.headers.get('content-type')).toBe('image/png');
    expect(final.headers.get('content-disposition')).toMatch(/^inline/);
    expect(Buffer.from(await final.arrayBuffer()).equals(image)).toBe(true);
  });

  it('stores a text file named x.png as text, never as an image', async () => {
    const user = await registerUser(server.api);
    const response = await upload(
      server.url,
      user.accessToken,
      Buffer.from('just some words, not pixels\n'),
      'x.png',
      'image/png',
    );
    expect(response.status).toBe(201);
    expect(response.body.data).toMatchObject({
      originalName: 'x.png',
      mimeType: 'text/plain',
      metadata: null,
    });
    expect(response.body.data!.filename).toMatch(/\.txt$/);
    const { final } = await fetchContent(user, response.body.data!);
    expect(final.headers.get('content-type')).toMatch(/^text\/plain/);
  });

  it('refuses a file over UPLOAD_MAX_BYTES with 413, declared or streamed, and keeps nothing', async () => {
    const user = await registerUser(server.api);
    const [filesBefore, rowsBefore] = [await stored(), await rowCount()];
    const declared = await upload(
      server.url,
      user.accessToken,
      Buffer.alloc(MAX_BYTES + 1, 0x61),
      'big.txt',
    );
    expect(declared.status).toBe(413);
    expect(declared.body).toMatchObject({ success: false, code: 'PAYLOAD_TOO_LARGE' });
    // No Content-Length: the server counts, and answers when the limit is crossed.
    const streamed = await uploadStreamed(server.url, user.accessToken, 8 * MAX_BYTES, 'big.txt');
    expect(streamed.status).toBe(413);
    // Exactly at the limit is fine.
    const atLimit = await uploadStreamed(server.url, user.accessToken, MAX_BYTES, 'edge.txt');
    expect(atLimit.status).toBe(201);
    expect(atLimit.body.data!.size).toBe(MAX_BYTES);
    const name = atLimit.body.data!.filename;
    expect(await stored()).toEqual(
      [...filesBefore, kind === 'local' ? name : `uploads/${name}`].sort(),
    );
    expect(await rowCount()).toBe(rowsBefore + 1);
  });

  it('refuses executables and other binaries with 415, also when the binary part comes late', async () => {
    const user = await registerUser(server.api);
    const [filesBefore, rowsBefore] = [await stored(), await rowCount()];
    const elf = await upload(server.url, user.accessToken, executable(), 'harmless.png');
    expect(elf.status).toBe(415);
    expect(elf.body.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    const noise = await upload(server.url, user.accessToken, randomBytes(10_000), 'noise.txt');
    expect(noise.status).toBe(415);
    // Text for the first 64 KiB (past the sniffed head), then NUL bytes.
    const lateBinary = Buffer.concat([Buffer.alloc(64 * 1024, 0x61), Buffer.alloc(1024, 0)]);
    const late = await upload(server.url, user.accessToken, lateBinary, 'notes.txt');
    expect(late.status).toBe(415);
    const empty = await upload(server.url, user.accessToken, Buffer.alloc(0), 'empty.txt');
    expect(empty.status).toBe(400);
    expect(await stored()).toEqual(filesBefore);
    expect(await rowCount()).toBe(rowsBefore);
  });

  it('answers malformed requests with 4xx envelopes', async () => {
    const user = await registerUser(server.api);
    const post = (body: string | FormData, headers: Record<string, string>) =>
      fetch(`${server.url}/api/attachments`, { method: 'POST', headers, body });
    const json = await post('{"file":"x"}', { ...auth(user), 'content-type': 'application/json' });
    expect(json.status).toBe(415);
    const form = new FormData();
    form.append('other', 'value');
    const noFile = await post(form, auth(user));
    expect(noFile.status).toBe(400);
    expect(await noFile.json()).toMatchObject({ success: false, code: 'VALIDATION_ERROR' });
    const noBoundary = await post('x', { ...auth(user), 'content-type': 'multipart/form-data' });
    expect(noBoundary.status).toBe(400);
    const cutOff = await post(
      '--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello wor',
      { ...auth(user), 'content-type': 'multipart/form-data; boundary=b' },
    );
    expect(cutOff.status).toBe(400);
    const anonymous = await upload(server.url, 'not-a-token', png(2, 2), 'a.png');
    expect(anonymous.status).toBe(401);
    for (const id of ['nope', 'NOT-AN-ID', '../etc']) {
      const response = await fetch(`${server.url}/api/attachments/${id}/content`, {
        headers: auth(user),
      });
      expect([400, 404]).toContain(response.status);
    }
  });

  it('survives a body cut off inside a part of another field (no crash), and answers 400', async () => {
    const user = await registerUser(server.api);
    for (const field of ['other', 'file']) {
      const response = await fetch(`${server.url}/api/attachments`, {
        method: 'POST',
        headers: { ...auth(user), 'content-type': 'multipart/form-data; boundary=b' },
        body: `--b\r\nContent-Disposition: form-data; name="${field}"; filename="x.txt"\r\n\r\nzzzzzz`,
      });
      expect(response.status).toBe(400);
    }
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  it('closes the connection on a declared body over the limit instead of reading it', async () => {
    const user = await registerUser(server.api);
    const { port } = new URL(server.url);
    const socket = createConnection({ host: '127.0.0.1', port: Number(port) });
    await once(socket, 'connect');
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    // The server hanging up may fail our next write (EPIPE, ECONNRESET): that is the close too.
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write(
      'POST /api/attachments HTTP/1.1\r\nHost: x\r\n' +
        `Authorization: Bearer ${user.accessToken}\r\n` +
        'Content-Type: multipart/form-data; boundary=b\r\n' +
        `Content-Length: ${50 * 1024 * 1024}\r\n\r\n--b\r\n`,
    );
    // Keep sending, as a client with 50 MB to go would; the server must hang up regardless.
    const filler = Buffer.alloc(64 * 1024, 0x61);
    const pump = setInterval(() => socket.writable && socket.write(filler), 5);
    socket.on('error', () => undefined);
    try {
      await Promise.race([
        closed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('not closed')), 3_000)),
      ]);
    } finally {
      clearInterval(pump);
      socket.destroy();
    }
    expect(answer).toMatch(/^HTTP\/1\.1 413/);
    expect(answer.toLowerCase()).toContain('connection: close');
  });

  it('replays a repeated send with files (same clientMessageId) instead of refusing it', async () => {
    const user = await registerUser(server.api);
    const conversation = await createConversation(server.api, user);
    const attachment = (await upload(server.url, user.accessToken, png(2, 2), 'a.png')).body.data!;
    const body = {
      content: 'once',
      attachments: [attachment.id],
      clientMessageId: `c-${createId()}`,
    };
    const send = () =>
      server.api.post<Envelope<{ message: SentMessage }>>(
        `/api/chat/conversations/${conversation.id}/messages`,
        body,
        { token: user.accessToken },
      );
    const together = await Promise.all([send(), send()]);
    const again = await send();
    const results = [...together, again];
    expect(results.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(new Set(results.map((r) => r.body.data!.message.id)).size).toBe(1);
    expect(again.body.data!.message.attachments.map((a) => a.id)).toEqual([attachment.id]);
  });

  it('keeps uploads private: outsiders get 404, participants get them once sent, none after deletion', async () => {
    const [uploader, member, outsider] = await Promise.all([
      registerUser(server.api),
      registerUser(server.api),
      registerUser(server.api),
    ]);
    const attachment = (await upload(server.url, uploader.accessToken, png(4, 4), 'a.png')).body
      .data!;
    const metadataOf = (user: RegisteredUser) =>
      server.api.get(`/api/attachments/${attachment.id}`, { token: user.accessToken });
    const contentOf = async (user: RegisteredUser) => (await fetchContent(user, attachment)).first;

    // Unsent: the uploader's alone.
    expect((await metadataOf(member)).status).toBe(404);
    expect((await contentOf(member)).status).toBe(404);
    const conversation = await createConversation(server.api, uploader, {
      participantIds: [member.user.id],
    });
    const sent = await sendWith(uploader, conversation.id, [attachment.id]);
    expect(sent.status).toBe(201);
    expect(sent.body.data!.message.type).toBe('IMAGE');

    for (const user of [uploader, member]) {
      expect((await metadataOf(user)).status).toBe(200);
      expect((await contentOf(user)).status).toBe(kind === 'local' ? 200 : 302);
    }
    const refused = [await metadataOf(outsider), await contentOf(outsider)];
    expect(refused.map((r) => r.status)).toEqual([404, 404]);
    expect((await metadataOf(outsider)).body).toMatchObject({ code: 'NOT_FOUND' });

    // The message deleted: nobody is served the file any more.
    const deleted = await server.api.delete(`/api/chat/messages/${sent.body.data!.message.id}`, {
      token: uploader.accessToken,
    });
    expect(deleted.status).toBe(200);
    for (const user of [uploader, member]) expect((await metadataOf(user)).status).toBe(404);
  });

  it("lets nobody attach someone else's upload, and an upload to one message only, even at once", async () => {
    const [owner, other] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const mine = (await upload(server.url, owner.accessToken, png(2, 2), 'a.png')).body.data!;
    const shared = await createConversation(server.api, owner, { participantIds: [other.user.id] });
    const stolen = await sendWith(other, shared.id, [mine.id]);
    expect(stolen.status).toBe(400);
    expect(stolen.body.code).toBe('VALIDATION_ERROR');

    const [a, b] = await Promise.all([
      createConversation(server.api, owner),
      createConversation(server.api, owner),
    ]);
    const results = await Promise.all([
      sendWith(owner, a.id, [mine.id]),
      sendWith(owner, b.id, [mine.id]),
      sendWith(owner, a.id, [mine.id]),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 400, 400]);
  });

  it('never lets a client name reach the disk: traversal names are only shown, sanitized', async () => {
    const user = await registerUser(server.api);
    const before = await stored();
    const names = [
      '../../etc/passwd',
      '..\\..\\windows\\evil.txt',
      '/abs/path.md',
      '\u202egnp.exe',
    ];
    const uploaded: AttachmentData[] = [];
    for (const name of names) {
      const response = await uploadStreamed(server.url, user.accessToken, 100, name);
      expect(response.status).toBe(201);
      uploaded.push(response.body.data!);
    }
    expect(uploaded.map((a) => a.originalName)).toEqual([
      'passwd',
      'evil.txt',
      'path.md',
      'gnp.exe',
    ]);
    for (const attachment of uploaded) expect(attachment.filename).toMatch(/^[a-z0-9]+\.[a-z]+$/);
    const added = (await stored()).filter((file) => !before.includes(file));
    expect(added.sort()).toEqual(
      uploaded.map((a) => (kind === 'local' ? a.filename : `uploads/${a.filename}`)).sort(),
    );
    if (kind === 'local') {
      // Nothing was written anywhere else under DATA_DIR either.
      const everything = await filesUnder(server.config.DATA_DIR);
      expect(
        everything.filter((f) => !f.startsWith('uploads/') && !f.startsWith('pglite')),
      ).toEqual([]);
    }
  });

  it('serves HTML, SVG (and PDF) as downloads, never rendered; text with its charset', async () => {
    const user = await registerUser(server.api);
    const files = [
      ['page.html', '<html><body><script>alert(1)</script></body></html>', 'text/html'],
      [
        'logo.svg',
        '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        'image/svg+xml',
      ],
    ] as const;
    const pdf = Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n');
    const pdfUpload = (await upload(server.url, user.accessToken, pdf, 'doc.pdf')).body.data!;
    expect(pdfUpload.mimeType).toBe('application/pdf');
    const served = (await fetchContent(user, pdfUpload)).final;
    expect(served.headers.get('content-disposition')).toMatch(/^attachment/);
    for (const [name, body, mimeType] of files) {
      const attachment = (
        await upload(server.url, user.accessToken, Buffer.from(body), name, 'text/html')
      ).body.data!;
      expect(attachment.mimeType).toBe(mimeType);
      const { final, location } = await fetchContent(user, attachment);
      expect(final.status).toBe(200);
      expect(final.headers.get('content-disposition')).toMatch(/^attachment/);
      expect(final.headers.get('content-type')).toBe(`${mimeType}; charset=utf-8`);
      if (kind === 'local') {
        expect(final.headers.get('x-content-type-options')).toBe('nosniff');
        expect(final.headers.get('content-security-policy')).toContain('sandbox');
      } else {
        expect(new URL(location!).searchParams.get('response-content-disposition')).toMatch(
          /^attachment/,
        );
      }
      expect(await final.text()).toBe(body);
    }
    // SVG is text, not a picture: a message with it is a FILE message.
    const svg = (await upload(server.url, user.accessToken, Buffer.from(files[1][1]), 'a.svg')).body
      .data!;
    const conversation = await createConversation(server.api, user);
    const sent = await sendWith(user, conversation.id, [svg.id]);
    expect(sent.body.data!.message.type).toBe('FILE');
  });

  // Local storage streams the bytes itself; S3 answers ranges at its presigned link.
  if (kind === 'local')
    it('serves byte ranges, and 416 for a range past the end', async () => {
      const user = await registerUser(server.api);
      const bytes = Buffer.from('0123456789abcdef');
      const attachment = (await upload(server.url, user.accessToken, bytes, 'digits.txt')).body
        .data!;
      const part = await fetch(`${server.url}${attachment.url}`, {
        headers: { ...auth(user), range: 'bytes=4-9' },
      });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-range')).toBe('bytes 4-9/16');
      expect(part.headers.get('content-length')).toBe('6');
      expect(await part.text()).toBe('456789');
      const tail = await fetch(`${server.url}${attachment.url}`, {
        headers: { ...auth(user), range: 'bytes=-3' },
      });
      expect(await tail.text()).toBe('def');
      const outside = await fetch(`${server.url}${attachment.url}`, {
        headers: { ...auth(user), range: 'bytes=100-200' },
      });
      expect(outside.status).toBe(416);
      expect(outside.headers.get('content-range')).toBe('bytes */16');
      expect(await outside.json()).toMatchObject({ code: 'RANGE_NOT_SATISFIABLE' });
    });

  if (kind === 's3')
    it('redirects to a presigned link that works, and that the server refuses once expired', async () => {
      const user = await registerUser(server.api);
      const image = png(5, 5);
      const attachment = (await upload(server.url, user.accessToken, image, 'a.png')).body.data!;
      const { first, final, location } = await fetchContent(user, attachment);
      expect(first.status).toBe(302);
      expect(first.headers.get('cache-control')).toContain('no-store');
      const link = new URL(location!);
      expect(link.origin).toBe(s3!.endpoint);
      expect(link.searchParams.get('X-Amz-Expires')).toBe('2');
      expect(Buffer.from(await final.arrayBuffer()).equals(image)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 3_100));
      const expired = await fetch(location!);
      expect(expired.status).toBe(403);
      expect(await expired.text()).toContain('Request has expired');
    });

  it('puts attachments on message:new and message pages; a picture may be sent without text', async () => {
    const [owner, member] = await Promise.all([registerUser(server.api), registerUser(server.api)]);
    const conversation = await createConversation(server.api, owner, {
      participantIds: [member.user.id],
    });
    const listener = await connectAs(server.url, member.accessToken);
    try {
      const uploads = await Promise.all(
        [png(3, 3), png(6, 2)].map((bytes, i) =>
          upload(server.url, owner.accessToken, bytes, `p${i}.png`),
        ),
      );
      const ids = uploads.map((u) => u.body.data!.id);
      const blank = await server.api.post(
        `/api/chat/conversations/${conversation.id}/messages`,
        { content: '  ' },
        { token: owner.accessToken },
      );
      expect(blank.status).toBe(400);
      const sent = await server.api.post<Envelope<{ message: SentMessage }>>(
        `/api/chat/conversations/${conversation.id}/messages`,
        { attachments: ids },
        { token: owner.accessToken },
      );
      expect(sent.status).toBe(201);
      const message = sent.body.data!.message;
      expect(message).toMatchObject({ type: 'IMAGE', content: '' });
      expect(message.attachments.map((a) => a.id).sort()).toEqual([...ids].sort());
      const announced = (await listener.next(
        'message:new',
        (p) => (p as { message: { id: string } }).message.id === message.id,
      )) as { message: SentMessage };
      expect(announced.message.attachments).toEqual(message.attachments);
      const page = await server.api.get<Envelope<{ messages: SentMessage[] }>>(
        `/api/chat/conversations/${conversation.id}/messages`,
        { token: member.accessToken },
      );
      const listed = page.body.data!.messages.find((m) => m.id === message.id)!;
      expect(listed.attachments).toEqual(message.attachments);
      // Each attachment's url works for the member.
      for (const attachment of listed.attachments)
        expect((await fetchContent(member, attachment)).final.status).toBe(200);
    } finally {
      listener.close();
    }
  });

  it('takes many uploads at once, each whole and separate', async () => {
    const user = await registerUser(server.api);
    const files = Array.from({ length: 8 }, (_, i) => Buffer.from(`file ${i}\n`.repeat(2_000 + i)));
    const results = await Promise.all(
      files.map((bytes, i) => upload(server.url, user.accessToken, bytes, `f${i}.txt`)),
    );
    expect(results.map((r) => r.status)).toEqual(files.map(() => 201));
    expect(new Set(results.map((r) => r.body.data!.filename)).size).toBe(files.length);
    for (const [i, result] of results.entries()) {
      const { final } = await fetchContent(user, result.body.data!);
      expect(Buffer.from(await final.arrayBuffer()).equals(files[i]!)).toBe(true);
    }
  });

  // Last: it sweeps every upload of this server that no message used.
  it('cleans up: unattached after the TTL, files of deleted messages, orphans in storage', async () => {
    const user = await registerUser(server.api);
    const conversation = await createConversation(server.api, user);
    const uploadPng = async (n: number) =>
      (await upload(server.url, user.accessToken, png(n, n), `${n}.png`)).body.data!;
    const [kept, unattached, ofDeleted] = await Promise.all([
      uploadPng(1),
      uploadPng(2),
      uploadPng(3),
    ]);
    expect((await sendWith(user, conversation.id, [kept.id])).status).toBe(201);
    const doomed = await sendWith(user, conversation.id, [ofDeleted.id]);
    await server.api.delete(`/api/chat/messages/${doomed.body.data!.message.id}`, {
      token: user.accessToken,
    });
    // A file no row names (a process killed between the write and the insert).
    const orphan = `${createId()}.txt`;
    await server.container.storage.write(orphan, Readable.from([Buffer.from('x')]), 'text/plain');
    const key = (name: string) => (kind === 'local' ? name : `uploads/${name}`);

    const cleanup = server.container.attachmentCleanup;
    // Now: only the deleted message's file goes; the unattached upload and the orphan are young.
    const early = await cleanup.sweep(new Date());
    expect(early.ofDeletedMessages).toBeGreaterThanOrEqual(1);
    expect(await stored()).toEqual(expect.arrayContaining([key(unattached.filename), key(orphan)]));
    expect(await stored()).not.toContain(key(ofDeleted.filename));

    const later = await cleanup.sweep(new Date(Date.now() + 25 * HOUR));
    expect(later.unattached).toBeGreaterThanOrEqual(1);
    expect(later.orphans).toBeGreaterThanOrEqual(1);
    const left = await stored();
    expect(left).toContain(key(kept.filename));
    expect(left).not.toContain(key(unattached.filename));
    expect(left).not.toContain(key(orphan));
    const status = async (id: string) =>
      (await server.api.get(`/api/attachments/${id}`, { token: user.accessToken })).status;
    expect(await status(kept.id)).toBe(200);
    expect(await status(unattached.id)).toBe(404);
    // Every row left names a file that exists, and every file a row.
    const rows = await selectRows<{ filename: string }>(
      server.container.database.db,
      sql`select filename from attachments`,
    );
    expect(rows.map((r) => key(r.filename)).sort()).toEqual(
      left.filter((f) => !f.startsWith('.partial')).sort(),
    );
  });
});

describe('when the S3 store cannot be reached', () => {
  let server: TestServer;
  beforeAll(async () => {
    const port = await freePort(); // nothing listens there
    server = await startTestServer({
      STORAGE: 's3',
      S3_BUCKET: 'absent',
      S3_ENDPOINT: `http://127.0.0.1:${port}`,
      S3_ACCESS_KEY_ID: 'x',
      S3_SECRET_ACCESS_KEY: 'y',
      S3_FORCE_PATH_STYLE: 'true',
    });
  });
  afterAll(async () => server?.close());

  it('answers uploads 503 UNAVAILABLE, stores no row, and /ready names the storage', async () => {
    const user = await registerUser(server.api);
    const response = await upload(server.url, user.accessToken, png(3, 3), 'a.png');
    expect(response.status).toBe(503);
    expect(response.body).toMatchObject({ success: false, code: 'UNAVAILABLE' });
    const rows = await selectRows<{ n: number }>(
      server.container.database.db,
      sql`select count(*)::int as n from attachments`,
    );
    expect(rows[0]!.n).toBe(0);
    const ready = await server.api.get<Envelope>('/ready');
    expect(ready.status).toBe(503);
    expect(ready.body.error).toContain('storage (s3)');
  });
});
