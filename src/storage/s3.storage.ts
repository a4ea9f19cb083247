// Uploads in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, …) under the `uploads/` prefix,
// which belongs to Parley: the cleanup job deletes objects there that no attachment names.
// Files stream up in 5 MiB parts (multipart above that size), one sent while the next fills.
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Readable } from 'node:stream';
import {
  assertStorageKey,
  isStorageKey,
  StoredFileMissing,
  type ByteRange,
  type DownloadLink,
  type FileStorage,
} from './storage.js';

const PREFIX = 'uploads/';
const PART_SIZE = 5 * 1024 * 1024; // S3's smallest part

export interface S3StorageOptions {
  bucket: string;
  endpoint: string | undefined;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
}

export class S3Storage implements FileStorage {
  readonly kind = 's3';
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(options: S3StorageOptions) {
    this.bucket = options.bucket;
    this.client = new S3Client({
      region: options.region,
      endpoint: options.endpoint,
      forcePathStyle: options.forcePathStyle,
      // Unset: the SDK's own chain (environment, instance role, …).
      credentials:
        options.accessKeyId && options.secretAccessKey
          ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
          : undefined,
      // A store that accepts connections and then stalls must fail the request, not hold an
      // upload (and its part buffers) or the cleanup job for ever.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
      // Checksums on by default (SDK ≥ 3.729) are not understood by every S3-compatible store.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async write(key: string, body: Readable, contentType: string): Promise<void> {
    assertStorageKey(key);
    // The body's own failure (too big, not text after all, client gone) is the error to report,
    // not the SDK's account of the aborted upload.
    let bodyError: Error | undefined;
    body.once('error', (error) => (bodyError ??= error));
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: PREFIX + key, Body: body, ContentType: contentType },
      partSize: PART_SIZE,
      queueSize: 1, // one part in flight while the next fills: memory stays ~2 parts (bench/upload.ts)
      leavePartsOnError: false, // aborts the multipart upload on failure
    });
    try {
      await upload.done();
    } catch (error) {
      await this.remove(key).catch(() => {});
      throw bodyError ?? error;
    }
    if (bodyError) {
      await this.remove(key).catch(() => {});
      throw bodyError;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    assertStorageKey(key);
    try {
      const result = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: PREFIX + key,
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      if (!(result.Body instanceof Readable)) throw new Error('S3 returned no body stream');
      return result.Body;
    } catch (error) {
      if (error instanceof S3ServiceException && error.name === 'NoSuchKey')
        throw new StoredFileMissing(key);
      throw error;
    }
  }

  downloadLink(key: string, link: DownloadLink): Promise<string> {
    assertStorageKey(key);
    return getSignedUrl(
      this.client,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: PREFIX + key,
        // The store answers with our headers, so HTML or SVG is a download there too.
        ResponseContentType: link.contentType,
        ResponseContentDisposition: link.contentDisposition,
      }),
      { expiresIn: link.expiresInSeconds },
    );
  }

  async remove(key: string): Promise<void> {
    assertStorageKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: PREFIX + key }));
  }

  async *listOlderThan(before: Date): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: PREFIX, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(PREFIX.length);
        if (key && isStorageKey(key) && object.LastModified && object.LastModified < before)
          yield key;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * Aborts multipart uploads begun before `before` (a process killed mid-upload). Stores that do
   * not list multipart uploads (s3rver) answer NotImplemented: 0, and a bucket lifecycle rule
   * (AbortIncompleteMultipartUpload) is the way there (docs/deployment.md).
   */
  async removeAbandoned(before: Date): Promise<number> {
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      do {
        const page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: PREFIX,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
        for (const upload of page.Uploads ?? []) {
          if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated >= before)
            continue;
          await this.client.send(
            new AbortMultipartUploadCommand({
              Bucket: this.bucket,
              Key: upload.Key,
              UploadId: upload.UploadId,
            }),
          );
          removed++;
        }
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
      } while (keyMarker);
    } catch (error) {
      if (error instanceof S3ServiceException && error.name === 'NotImplemented') return removed;
      throw error;
    }
    return removed;
  }

  async check(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }
}
