// Uploads on the local disk, under DATA_DIR/uploads. A file is written to `.partial/` first and
// renamed into place when complete, so a half-written file is never served and a process killed
// mid-write leaves only a `.partial/` file, which the cleanup job removes.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import {
  assertStorageKey,
  isStorageKey,
  StoredFileMissing,
  type ByteRange,
  type FileStorage,
} from './storage.js';

const PARTIAL = '.partial';

export class LocalStorage implements FileStorage {
  readonly kind = 'local';
  private readonly root: string;
  private ready: Promise<void> | undefined;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  async write(key: string, body: Readable): Promise<void> {
    const target = this.pathOf(key);
    await this.prepare();
    const partial = path.join(this.root, PARTIAL, `${key}.${randomBytes(6).toString('hex')}`);
    try {
      await pipeline(body, createWriteStream(partial, { flags: 'wx' }));
      await rename(partial, target);
    } catch (error) {
      await unlink(partial).catch(() => {});
      throw error;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.pathOf(key);
    const stream = createReadStream(file, range ? { start: range.start, end: range.end } : {});
    // Surface "no such file" before a response starts, not mid-stream.
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', (error: NodeJS.ErrnoException) =>
        reject(error.code === 'ENOENT' ? new StoredFileMissing(key) : error),
      );
    });
    return stream;
  }

  downloadLink(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  async remove(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async *listOlderThan(before: Date): AsyncIterable<string> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw error;
    }
    for (const name of names) {
      if (!isStorageKey(name)) continue;
      const info = await stat(path.join(this.root, name)).catch(() => undefined);
      if (info?.isFile() && info.mtime < before) yield name;
    }
  }

  async removeAbandoned(before: Date): Promise<number> {
    const dir = path.join(this.root, PARTIAL);
    const names = await readdir(dir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      const file = path.join(dir, name);
      const info = await stat(file).catch(() => undefined);
      if (info && info.mtime < before) {
        await rm(file, { force: true });
        removed++;
      }
    }
    return removed;
  }

  async check(): Promise<void> {
    await this.prepare();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private prepare(): Promise<void> {
    this.ready ??= mkdir(path.join(this.root, PARTIAL), { recursive: true }).then(
      () => undefined,
      (error: unknown) => {
        this.ready = undefined;
        throw error;
      },
    );
    return this.ready;
  }

  /** The file of a key: keys are checked, and the result must stay inside the root. */
  private pathOf(key: string): string {
    assertStorageKey(key);
    const file = path.join(this.root, key);
    if (path.dirname(file) !== this.root) throw new Error(`Key escapes the upload folder: ${key}`);
    return file;
  }
}
