// GET / and its assets: Parley's own web client (SPEC §9), built from web/ into dist/web, under a
// Content-Security-Policy that allows this origin only (plus, with STORAGE=s3, the bucket's, for
// attachment bytes) and no inline script.
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import express, { Router, type RequestHandler } from 'express';
import type { Config } from '../config/env.js';

export type StorageConfig = Pick<
  Config,
  'STORAGE' | 'S3_BUCKET' | 'S3_ENDPOINT' | 'S3_REGION' | 'S3_FORCE_PATH_STYLE'
>;

// A bucket name the SDK may put in the host name (virtual-hosted style): one DNS label.
const HOSTABLE_BUCKET = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;

/**
 * The origins GET /api/attachments/:id/content redirects to with STORAGE=s3 (a presigned link
 * the page then fetches). The SDK presigns virtual-hosted links (bucket.endpoint) where the bucket
 * name fits a host name and path-style is not forced, path-style ones (endpoint/bucket/key)
 * otherwise: both origins are named where both can occur. test/api/web-csp.test.ts checks these
 * against the SDK's own links.
 */
export function storageOrigins(config: StorageConfig): string[] {
  if (config.STORAGE !== 's3' || !config.S3_BUCKET) return [];
  const base = new URL(config.S3_ENDPOINT ?? `https://s3.${config.S3_REGION}.amazonaws.com`);
  const origins = [base.origin];
  const hostname = base.hostname.replace(/^\[|\]$/g, '');
  if (
    !config.S3_FORCE_PATH_STYLE &&
    HOSTABLE_BUCKET.test(config.S3_BUCKET) &&
    !isIP(hostname) &&
    hostname !== 'localhost'
  )
    origins.push(`${base.protocol}//${config.S3_BUCKET}.${base.host}`);
  return origins;
}

/** The page's policy; `elsewhere` are the other origins attachment bytes come from. */
export function contentSecurityPolicy(elsewhere: string[] = []): string {
  const also = elsewhere.map((origin) => ` ${origin}`).join('');
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    // Attachments are fetched (with the bearer token, or from a presigned link the API redirects
    // to) and shown through blob: URLs, so only connect-src names the bucket.
    "img-src 'self' blob: data:",
    "media-src 'self' blob:",
    `connect-src 'self'${also}`,
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The client's routes, or none when it was not built (the API works without it). */
export function webRoutes(dir: string, storage: StorageConfig): Router | undefined {
  if (!existsSync(path.join(dir, 'index.html'))) return undefined;
  const csp = contentSecurityPolicy(storageOrigins(storage));
  const withPolicy: RequestHandler = (_req, res, next) => {
    res.setHeader('Content-Security-Policy', csp);
    next();
  };
  const router = Router();
  router.use(
    withPolicy,
    express.static(dir, {
      index: 'index.html',
      // Not content-hashed names: revalidate each time (an ETag makes that a 304).
      cacheControl: true,
      maxAge: 0,
      fallthrough: true,
    }),
  );
  return router;
}
