// The configured file storage (STORAGE): local disk by default, an S3-compatible bucket with s3.
// The AWS SDK is loaded only when S3 is configured, so a local start does not pay for it.
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Config } from '../config/env.js';
import { LocalStorage } from './local.storage.js';
import type { ByteRange, DownloadLink, FileStorage } from './storage.js';

export function createStorage(config: Config): FileStorage {
  if (config.STORAGE === 's3') {
    const options = {
      bucket: config.S3_BUCKET!, // required by the configuration schema when STORAGE=s3
      endpoint: config.S3_ENDPOINT,
      region: config.S3_REGION,
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
    };
    return new LazyStorage(
      's3',
      async () => new (await import('./s3.storage.js')).S3Storage(options),
    );
  }
  return new LocalStorage(path.join(config.DATA_DIR, 'uploads'));
}

/** A storage built on first use. */
class LazyStorage implements FileStorage {
  private loaded: Promise<FileStorage> | undefined;

  constructor(
    readonly kind: FileStorage['kind'],
    private readonly load: () => Promise<FileStorage>,
  ) {}

  private get storage(): Promise<FileStorage> {
    return (this.loaded ??= this.load());
  }

  async write(key: string, body: Readable, contentType: string): Promise<void> {
    return (await this.storage).write(key, body, contentType);
  }
  async read(key: string, range?: ByteRange): Promise<Readable> {
    return (await this.storage).read(key, range);
  }
  async downloadLink(key: string, link: DownloadLink): Promise<string | undefined> {
    return (await this.storage).downloadLink(key, link);
  }
  async remove(key: string): Promise<void> {
    return (await this.storage).remove(key);
  }
  async *listOlderThan(before: Date): AsyncIterable<string> {
    yield* (await this.storage).listOlderThan(before);
  }
  async removeAbandoned(before: Date): Promise<number> {
    return (await this.storage).removeAbandoned(before);
  }
  async check(): Promise<void> {
    return (await this.storage).check();
  }
  async close(): Promise<void> {
    if (this.loaded) await (await this.loaded).close();
  }
}
