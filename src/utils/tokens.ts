// Opaque random tokens and the hashes they are stored under.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** 256 bits of randomness, URL-safe. Refresh tokens are these. */
export const randomToken = (): string => randomBytes(32).toString('base64url');

/**
 * SHA-256 is enough for high-entropy random tokens (no dictionary to attack), and being
 * deterministic it lets the database look a token up by its hash through a unique index.
 */
export const hashToken = (token: string): string =>
  createHash('sha256').update(token).digest('hex');

/** Constant-time comparison of two secrets of any length. */
export function safeEqual(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest();
  const right = createHash('sha256').update(b).digest();
  return timingSafeEqual(left, right);
}
