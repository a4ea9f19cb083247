// GET / and its assets: Parley's own web client (SPEC §9), built from web/ into dist/web, under a
// Content-Security-Policy that allows this origin only and no inline script.
import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type RequestHandler } from 'express';

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  // Attachments are fetched with the bearer token and shown through blob: URLs.
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const withPolicy: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', CSP);
  next();
};

/** The client's routes, or none when it was not built (the API works without it). */
export function webRoutes(dir: string): Router | undefined {
  if (!existsSync(path.join(dir, 'index.html'))) return undefined;
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
