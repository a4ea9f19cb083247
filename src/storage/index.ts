// The configured file storage (STORAGE): local disk by default, an S3-compatible bucket with s3.
import path from 'node:path';
import type { Config } from '../config/env.js';
import { LocalStorage } from './local.storage.js';
import { S3Storage } from './s3.storage.js';
import type { FileStorage } from './storage.js';

export function createStorage(config: Config): FileStorage {
  if (config.STORAGE === 's3') {
    return new S3Storage({
      bucket: config.S3_BUCKET!, // required by the configuration schema when STORAGE=s3
      endpoint: config.S3_ENDPOINT,
      region: config.S3_REGION,
      accessKeyId: config.S3_ACCESS_KEY_ID,
      secretAccessKey: config.S3_SECRET_ACCESS_KEY,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
    });
  }
  return new LocalStorage(path.join(config.DATA_DIR, 'uploads'));
}
