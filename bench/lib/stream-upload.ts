// A client that uploads a file from disk as multipart/form-data the way a browser does, streamed:
// the envelope's head, the file's read stream, the closing boundary; never the file in memory.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request, type IncomingMessage } from 'node:http';
import { pipeline } from 'node:stream/promises';

export interface StreamedUpload {
  status: number;
  body: string;
  /** From the request's start to the response's last byte. */
  ms: number;
  /** From the request's start to the file's last byte handed to the connection. */
  sentMs: number;
  /** The request body's length: the file and its multipart envelope. */
  bodyBytes: number;
}

export async function streamUpload(
  url: string,
  token: string,
  file: { path: string; name: string; type: string },
): Promise<StreamedUpload> {
  const { size } = await stat(file.path);
  const boundary = `----parley-bench-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\n` +
      `Content-Type: ${file.type}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const bodyBytes = head.length + size + tail.length;
  const started = performance.now();
  let sentMs = NaN;
  const req = request(url, {
    method: 'POST',
    agent: false, // a connection of its own, closed after the answer
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(bodyBytes),
    },
  });
  const answered = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  const sent = pipeline(async function* () {
    yield head;
    yield* createReadStream(file.path);
    sentMs = performance.now() - started;
    yield tail;
  }, req);
  // An early answer (a refusal) may cut the body short; the answer is what counts then.
  sent.catch(() => undefined);
  const response = await answered;
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  const ms = performance.now() - started;
  if (response.statusCode! < 400) await sent;
  return {
    status: response.statusCode!,
    body: Buffer.concat(chunks).toString('utf8'),
    ms,
    sentMs,
    bodyBytes,
  };
}
