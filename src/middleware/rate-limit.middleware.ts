// Counts a request against a limiter; over the limit it is a 429 with Retry-After.
import type { Request, RequestHandler } from 'express';
import { rateLimited } from '../errors.js';
import type { Limiter } from '../infra/rate-limiter.js';
import { principalOf } from './auth.middleware.js';
import { byIp } from './client-origin.js';
import { describeHandler } from '../openapi/route-meta.js';

/** The signed-in user: for limits on routes behind requireAuth. */
export const byUser = (req: Request): string => principalOf(req).userId;

export function rateLimit(
  limiter: Limiter,
  keyOf: (req: Request) => string = byIp,
): RequestHandler {
  const handler: RequestHandler = async (req, _res, next) => {
    const verdict = await limiter.hit(keyOf(req));
    if (!verdict.allowed) throw rateLimited(Math.ceil(verdict.retryAfterMs / 1000));
    next();
  };
  return describeHandler(handler, { errors: ['RATE_LIMITED'] });
}
