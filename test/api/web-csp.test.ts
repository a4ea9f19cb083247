// The page's Content-Security-Policy names only this origin, plus, with STORAGE=s3, the bucket's:
// attachment bytes come from a presigned link GET /api/attachments/:id/content redirects to, and
// the page fetches it (connect-src applies to redirect targets too).
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { storageOrigins, type StorageConfig } from '../../src/routes/web.routes.js';
import { startTestServer } from '../support/server.js';

const webDir = mkdtempSync(path.join(tmpdir(), 'parley-web-'));
writeFileSync(path.join(webDir, 'index.html'), '<!doctype html><title>Parley</title>');
afterAll(() => rmSync(webDir, { recursive: true, force: true }));

async function cspOf(env: Record<string, string>): Promise<Record<string, string>> {
  const server = await startTestServer({ WEB_DIR: webDir, ...env });
  try {
    const response = await fetch(`${server.url}/`);
    expect(response.status).toBe(200);
    const header = response.headers.get('content-security-policy') ?? '';
    return Object.fromEntries(
      header.split(';').map((part) => {
        const [name = '', ...sources] = part.trim().split(/\s+/);
        return [name, sources.join(' ')];
      }),
    );
  } finally {
    await server.close();
  }
}

describe('CSP of the web client', () => {
  it("allows only 'self' to connect with local storage", async () => {
    const csp = await cspOf({});
    expect(csp['connect-src']).toBe("'self'");
    expect(csp['img-src']).toBe("'self' blob: data:");
  });

  it('adds the S3 endpoint to connect-src with STORAGE=s3, and nothing else', async () => {
    const csp = await cspOf({
      STORAGE: 's3',
      S3_BUCKET: 'parley-files',
      S3_ENDPOINT: 'https://minio.example.com:9000',
      S3_FORCE_PATH_STYLE: 'true',
    });
    expect(csp['connect-src']).toBe("'self' https://minio.example.com:9000");
    expect(csp['default-src']).toBe("'self'");
    expect(csp['img-src']).toBe("'self' blob: data:");
  });

  it('names AWS S3 (path-style and virtual-hosted) when no endpoint is set', async () => {
    const csp = await cspOf({ STORAGE: 's3', S3_BUCKET: 'parley-files', S3_REGION: 'eu-west-3' });
    expect(csp['connect-src']).toBe(
      "'self' https://s3.eu-west-3.amazonaws.com https://parley-files.s3.eu-west-3.amazonaws.com",
    );
  });
});

describe('storageOrigins', () => {
  const base: StorageConfig = {
    STORAGE: 's3',
    S3_BUCKET: 'parley-files',
    S3_ENDPOINT: undefined,
    S3_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: false,
  };
  const cases: Array<Partial<StorageConfig>> = [
    {},
    { S3_REGION: 'eu-west-3' },
    { S3_BUCKET: 'my.dotted.bucket' },
    { S3_ENDPOINT: 'http://127.0.0.1:9000' },
    { S3_ENDPOINT: 'http://localhost:9000', S3_FORCE_PATH_STYLE: true },
    { S3_ENDPOINT: 'https://minio.example.com' },
    { S3_ENDPOINT: 'https://minio.example.com:9443/base' },
    { S3_ENDPOINT: 'https://acct.r2.cloudflarestorage.com', S3_REGION: 'auto' },
  ];

  it.each(cases)('includes the origin of the links the SDK presigns (%o)', async (overrides) => {
    const config = { ...base, ...overrides };
    const client = new S3Client({
      region: config.S3_REGION,
      endpoint: config.S3_ENDPOINT,
      forcePathStyle: config.S3_FORCE_PATH_STYLE,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const link = await getSignedUrl(
      client,
      new GetObjectCommand({ Bucket: config.S3_BUCKET, Key: 'uploads/x' }),
      { expiresIn: 60 },
    );
    expect(storageOrigins(config)).toContain(new URL(link).origin);
  });

  it('is empty with local storage', () => {
    expect(storageOrigins({ ...base, STORAGE: 'local' })).toEqual([]);
  });
});
