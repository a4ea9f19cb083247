// The files of bench/upload.ts, written to disk once: an MP4 whose media data is random bytes, and
// a UTF-8 log; and checking that bytes read back are the file's own.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const MiB = 1024 * 1024;

export type Kind = 'video' | 'text';

export interface BenchFile {
  kind: Kind;
  path: string;
  name: string;
  type: string;
  size: number;
  sha256: string;
}

/** An MP4 (an `ftyp` box file-type recognises as video/mp4) whose media data is random bytes. */
function* videoBlocks(bytes: number): Generator<Buffer> {
  const ftyp = Buffer.concat([
    Buffer.from([0, 0, 0, 0x20]),
    Buffer.from('ftypisom', 'ascii'),
    Buffer.from([0, 0, 2, 0]),
    Buffer.from('isomiso2avc1mp41', 'ascii'),
  ]);
  yield ftyp;
  for (let left = bytes - ftyp.length; left > 0; left -= MiB)
    yield randomBytes(Math.min(MiB, left));
}

/** A log-like UTF-8 text: English words from a seeded generator, a line in eight with CJK or accents. */
function* textBlocks(bytes: number): Generator<Buffer> {
  let seed = 0x2545f491;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const words = 'upload stream chunk server request latency storage bucket part disk memory'.split(
    ' ',
  );
  const extras = ['会议记录', 'café naïve', '日本語のテキスト', 'Grüße', 'données'];
  let line = 0;
  // One block of 1 MiB (ending in ASCII, so no character is cut), repeated.
  const lines: string[] = [];
  let length = 0;
  while (length < MiB - 200) {
    const n = 6 + Math.floor(random() * 10);
    let text = `2026-12-01T12:00:${String(line++ % 60).padStart(2, '0')}Z INFO`;
    for (let i = 0; i < n; i++) text += ` ${words[Math.floor(random() * words.length)]!}`;
    if (line % 8 === 0) text += ` ${extras[line % extras.length]!}`;
    text += '\n';
    lines.push(text);
    length += Buffer.byteLength(text);
  }
  const block = Buffer.concat([Buffer.from(lines.join('')), Buffer.alloc(MiB - length, '.')]);
  for (let left = bytes; left > 0; left -= MiB) yield block.subarray(0, Math.min(MiB, left));
}

/** Writes `bytes` bytes of `kind` into `dir`, hashing them on the way. */
export async function makeFile(dir: string, kind: Kind, bytes: number): Promise<BenchFile> {
  const name = kind === 'video' ? 'bench-video.mp4' : 'bench-text.log';
  const file = path.join(dir, name);
  const hash = createHash('sha256');
  const blocks = kind === 'video' ? videoBlocks(bytes) : textBlocks(bytes);
  await pipeline(
    Readable.from(
      (function* () {
        for (const block of blocks) {
          hash.update(block);
          yield block;
        }
      })(),
    ),
    createWriteStream(file),
  );
  const { size } = await stat(file);
  if (size !== bytes) throw new Error(`${name}: ${size} bytes written, ${bytes} meant`);
  return {
    kind,
    path: file,
    name,
    type: kind === 'video' ? 'video/mp4' : 'text/plain',
    size,
    sha256: hash.digest('hex'),
  };
}

/** Size and SHA-256 of a stream of bytes. */
export async function digest(
  body: AsyncIterable<Uint8Array>,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Throws unless `got` has the file's size and hash. */
export function sameBytes(
  what: string,
  file: BenchFile,
  got: { size: number; sha256: string },
): void {
  if (got.size !== file.size || got.sha256 !== file.sha256) {
    throw new Error(
      `${what}: read back ${got.size} bytes (sha256 ${got.sha256.slice(0, 12)}), ` +
        `the file has ${file.size} (${file.sha256.slice(0, 12)})`,
    );
  }
}
