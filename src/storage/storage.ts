// Where uploaded files' bytes live (SPEC §5 Attachments): one interface, a local folder or an
// S3-compatible bucket behind it. Keys are names the server generated (see `isStorageKey`);
// nothing a client sends ever becomes part of a path or an object key.
import type { Readable } from 'node:stream';

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface DownloadLink {
  contentType: string;
  /** The whole Content-Disposition header value the store should answer with. */
  contentDisposition: string;
  expiresInSeconds: number;
}

export interface FileStorage {
  readonly kind: 'local' | 's3';
  /**
   * Streams `body` to `key`. Resolves once the file is complete and visible under `key`; if
   * `body` fails or the write does, nothing is left under `key` and the promise rejects with
   * the body's error.
   */
  write(key: string, body: Readable, contentType: string): Promise<void>;
  /** The bytes of `key` (or of a range of them). Rejects with `StoredFileMissing` if absent. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  /** A short-lived link a browser can fetch directly (S3); undefined where the server streams. */
  downloadLink(key: string, link: DownloadLink): Promise<string | undefined>;
  /** Removes `key`; a missing key is not an error. */
  remove(key: string): Promise<void>;
  /** Keys whose file was last written before `before` (the cleanup job's orphan sweep). */
  listOlderThan(before: Date): AsyncIterable<string>;
  /** Drops writes abandoned before `before` (a process killed mid-upload); returns how many. */
  removeAbandoned(before: Date): Promise<number>;
  /** Throws when the store cannot be reached (for /ready). */
  check(): Promise<void>;
  close(): Promise<void>;
}

export class StoredFileMissing extends Error {
  constructor(key: string) {
    super(`No stored file ${key}`);
    this.name = 'StoredFileMissing';
  }
}

/** Keys the server generates: a cuid2 and an extension. Anything else is refused outright. */
const KEY = /^[a-z0-9]{16,40}\.[a-z0-9]{1,8}$/;
export const isStorageKey = (key: string): boolean => KEY.test(key);

export function assertStorageKey(key: string): void {
  if (!isStorageKey(key)) throw new Error(`Not a storage key: ${JSON.stringify(key)}`);
}
