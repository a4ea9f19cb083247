// Real files for upload tests, built byte by byte, and an upload client (multipart over fetch).
import { readFileSync } from 'node:fs';
import { crc32, deflateSync } from 'node:zlib';
import type { Envelope } from './api-client.js';

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A valid RGB PNG of the given size (a gradient, so it is not all one colour). */
export function png(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // RGB
  const rows = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = y * (width * 3 + 1) + 1 + x * 3;
      rows[at] = (x * 255) / Math.max(1, width - 1);
      rows[at + 1] = (y * 255) / Math.max(1, height - 1);
      rows[at + 2] = 128;
    }
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** An executable: the machine's own /bin/true (an ELF binary). */
export const executable = (): Buffer => readFileSync('/bin/true');

export interface UploadResult {
  status: number;
  body: Envelope<AttachmentData>;
  headers: Headers;
}

export interface AttachmentData {
  id: string;
  filename: string;
  originalName: string;
  mimeType: string;
  size: number;
  url: string;
  metadata: Record<string, unknown> | null;
}

/** POST /api/attachments with one file, as a browser's FormData would send it. */
export async function upload(
  baseUrl: string,
  token: string,
  bytes: Uint8Array,
  name: string,
  declaredType = 'application/octet-stream',
): Promise<UploadResult> {
  const form = new FormData();
  form.append('file', new Blob([bytes], { type: declaredType }), name);
  const response = await fetch(`${baseUrl}/api/attachments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  return {
    status: response.status,
    body: (await response.json()) as Envelope<AttachmentData>,
    headers: response.headers,
  };
}

/** The same, but the body is streamed without a Content-Length (chunked), in 64 KiB pieces. */
export async function uploadStreamed(
  baseUrl: string,
  token: string,
  size: number,
  name: string,
  fill = 0x61,
): Promise<UploadResult> {
  const boundary = `----parley${Date.now()}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  let sent = 0;
  const piece = Buffer.alloc(64 * 1024, fill);
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === 0) controller.enqueue(head);
      if (sent >= size) {
        controller.enqueue(tail);
        controller.close();
        return;
      }
      const n = Math.min(piece.length, size - sent);
      controller.enqueue(piece.subarray(0, n));
      sent += n;
    },
  });
  const response = await fetch(`${baseUrl}/api/attachments`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': `multipart/form-data; boundary=${boundary}`,
    },
    body,
    duplex: 'half',
  });
  return {
    status: response.status,
    body: (await response.json()) as Envelope<AttachmentData>,
    headers: response.headers,
  };
}
