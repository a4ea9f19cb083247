// What an upload is, decided from its bytes (SPEC §5: sniffed, never trusted from the client), and
// which kinds are accepted. Binary formats are recognised by their signature (file-type); a file
// with no signature is text only if every byte of it is UTF-8 without NUL (checked as it streams,
// see TextCheck), and then its extension only picks which text type it is.
import { isUtf8 } from 'node:buffer';

/** How the server treats a file: what the model is shown and how it is served. */
export type FileKind = 'image' | 'pdf' | 'audio' | 'video' | 'text';

export interface SniffedType {
  mimeType: string;
  /** The extension of the stored file's generated name. */
  extension: string;
  kind: FileKind;
}

/** Binary formats accepted, by the extension file-type reports (its mime type is kept). */
const BINARY: Record<string, FileKind> = {
  png: 'image',
  jpg: 'image',
  gif: 'image',
  webp: 'image',
  avif: 'image',
  bmp: 'image',
  pdf: 'pdf',
  mp3: 'audio',
  wav: 'audio',
  ogg: 'audio',
  opus: 'audio',
  flac: 'audio',
  m4a: 'audio',
  aac: 'audio',
  mp4: 'video',
  m4v: 'video',
  webm: 'video',
  mov: 'video',
  mkv: 'video',
};

/** Text types by the extension of the name the client gave (anything else: text/plain). */
const TEXT: Record<string, string> = {
  txt: 'text/plain',
  log: 'text/plain',
  md: 'text/markdown',
  markdown: 'text/markdown',
  csv: 'text/csv',
  tsv: 'text/tab-separated-values',
  json: 'application/json',
  xml: 'application/xml',
  yaml: 'text/yaml',
  yml: 'text/yaml',
  html: 'text/html',
  htm: 'text/html',
  svg: 'image/svg+xml',
  css: 'text/css',
  js: 'text/javascript',
  mjs: 'text/javascript',
  cjs: 'text/javascript',
  ts: 'text/x-typescript',
  tsx: 'text/x-typescript',
  jsx: 'text/javascript',
  py: 'text/x-python',
  rb: 'text/x-ruby',
  go: 'text/x-go',
  rs: 'text/x-rust',
  java: 'text/x-java',
  kt: 'text/x-kotlin',
  c: 'text/x-c',
  h: 'text/x-c',
  cpp: 'text/x-c++',
  cc: 'text/x-c++',
  hpp: 'text/x-c++',
  cs: 'text/x-csharp',
  php: 'text/x-php',
  sh: 'text/x-shellscript',
  sql: 'text/x-sql',
  swift: 'text/x-swift',
  toml: 'text/x-toml',
  ini: 'text/plain',
};

/** Images an OpenAI-compatible vision model takes as image parts. */
const VISION_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif']);
export const isVisionImage = (mimeType: string): boolean => VISION_TYPES.has(mimeType);

/**
 * Types a browser shows without running anything. Everything else (HTML, SVG, XML, scripts…) is
 * served as a download, whatever its name; PDF too: the content is served under a CSP sandbox,
 * in which Chromium does not open its PDF viewer.
 */
const INLINE_TYPES = new Set([
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/bmp',
  'text/plain',
]);
export const isSafeInline = (mimeType: string): boolean =>
  INLINE_TYPES.has(mimeType) || /^(audio|video)\//.test(mimeType);

/** Text the model can read: every text type above. */
export const isText = (mimeType: string): boolean =>
  mimeType.startsWith('text/') || Object.values(TEXT).includes(mimeType);

/** The Content-Type to serve: text was proven UTF-8 at upload, so say so (browsers guess else). */
export const servedType = (mimeType: string): string =>
  isText(mimeType) ? `${mimeType}; charset=utf-8` : mimeType;

/** A picture (the message type IMAGE): a raster image, not SVG, which is text. */
export const isPicture = (mimeType: string): boolean =>
  mimeType.startsWith('image/') && !isText(mimeType);

/** A binary signature file-type found: accepted or not (undefined → 415). */
export function acceptBinary(detected: { ext: string; mime: string }): SniffedType | undefined {
  const kind = BINARY[detected.ext];
  return kind ? { mimeType: detected.mime, extension: detected.ext, kind } : undefined;
}

/** A file without a binary signature that passed the text check, typed by its given name. */
export function textType(originalName: string): SniffedType {
  const extension = /\.([a-z0-9]{1,10})$/i.exec(originalName)?.[1]?.toLowerCase();
  const mimeType = (extension && TEXT[extension]) || 'text/plain';
  return { mimeType, extension: extension && TEXT[extension] ? extension : 'txt', kind: 'text' };
}

/**
 * UTF-8 validity checked chunk by chunk, so a text file is proven text to its last byte without
 * holding it: `push` returns false at the first chunk that cannot be UTF-8 text. Node's native
 * `isUtf8` does the checking (a TextDecoder would build, and throw away, a string per chunk: a
 * third of a text upload's CPU); a character cut by a chunk's end is carried to the next one.
 */
export class TextCheck {
  private carry: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): boolean {
    if (chunk.includes(0)) return false;
    const bytes = this.carry.length
      ? Buffer.concat([this.carry, chunk])
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const cut = bytes.length - incompleteTail(bytes);
    // Copied (at most 3 bytes), so the chunk itself is not kept alive.
    this.carry = Buffer.from(bytes.subarray(cut));
    return isUtf8(bytes.subarray(0, cut));
  }

  /** At the end: a sequence cut off by the end of the file is not text. */
  end(): boolean {
    return this.carry.length === 0;
  }
}

/** How many bytes at the end of `bytes` begin a UTF-8 sequence that they do not finish (0–3). */
function incompleteTail(bytes: Uint8Array): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const byte = bytes[bytes.length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: the lead is further back
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return length > back ? back : 0;
  }
  return 0; // complete, or continuation bytes without a lead: isUtf8 judges them
}

// Control characters, and the marks that reorder text (a name can otherwise pose as "exe.png").
// eslint-disable-next-line no-control-regex -- removing control characters is the point
const UNSHOWABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A name fit to show: the last path segment only, no control or direction-override characters,
 * at most 255 characters (keeping the extension). Never used for anything on disk.
 */
export function displayName(raw: string | undefined): string {
  const base = (raw ?? '').split(/[\\/]/).pop() ?? '';
  let name = base.replace(UNSHOWABLE, '');
  name = name.normalize('NFC').trim().replace(/^\.+/, '');
  if (!name) return 'file';
  const chars = [...name];
  if (chars.length <= 255) return name;
  const extension = /\.[^.]{1,16}$/.exec(name)?.[0] ?? '';
  return chars.slice(0, 255 - [...extension].length).join('') + extension;
}
