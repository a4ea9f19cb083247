// Signs and verifies access JWTs: HS256 only, with the claims SPEC §5 names.
import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { UserRole } from '../db/schema.js';

export const ACCESS_TOKEN_ALGORITHM = 'HS256';
export const ACCESS_TOKEN_ISSUER = 'parley';

export interface AccessClaims {
  sub: string;
  userId: string;
  sid: string;
  role: UserRole;
}

/** Claims of a verified access token, with its expiry in epoch milliseconds. */
export interface VerifiedAccess extends AccessClaims {
  expiresAt: number;
}

export class TokenService {
  // A KeyObject, made once: given a string, jsonwebtoken first tries (and fails) to parse it
  // as a public key on every verify, which cost 7% of a busy server's CPU.
  private readonly key: KeyObject;

  constructor(
    secret: string,
    private readonly accessTtlMs: number,
  ) {
    this.key = createSecretKey(Buffer.from(secret, 'utf8'));
  }

  get accessTtlSeconds(): number {
    return Math.floor(this.accessTtlMs / 1000);
  }

  signAccess(claims: Omit<AccessClaims, 'sub'>): string {
    const payload: AccessClaims = { sub: claims.userId, ...claims };
    return jwt.sign(payload, this.key, {
      algorithm: ACCESS_TOKEN_ALGORITHM,
      expiresIn: this.accessTtlSeconds,
      issuer: ACCESS_TOKEN_ISSUER,
    });
  }

  /** Verified claims and expiry of an access token; throws when it is not a valid one of ours. */
  verifyAccess(token: string): VerifiedAccess {
    const payload = jwt.verify(token, this.key, {
      algorithms: [ACCESS_TOKEN_ALGORITHM],
      issuer: ACCESS_TOKEN_ISSUER,
    });
    const claims = asAccessClaims(payload);
    if (!claims) throw new Error('not a Parley access token');
    return claims;
  }

  /** Verification options shared with the Passport strategy, so both pin the same rules. */
  get verifyOptions() {
    return {
      key: this.key,
      algorithms: [ACCESS_TOKEN_ALGORITHM] as jwt.Algorithm[],
      issuer: ACCESS_TOKEN_ISSUER,
    };
  }
}

/**
 * Narrows a verified JWT payload to our claims and expiry; anything else is not one of our
 * tokens. jsonwebtoken checks `exp` only when present, and every token we sign has one: a token
 * without it would never expire, so REST (Passport) and sockets both refuse it here.
 */
export function asAccessClaims(payload: unknown): VerifiedAccess | undefined {
  if (!payload || typeof payload !== 'object') return undefined;
  const p = payload as Record<string, unknown>;
  const roles: readonly unknown[] = ['USER', 'ADMIN', 'MODERATOR'];
  if (
    typeof p.sub === 'string' &&
    p.userId === p.sub &&
    typeof p.sid === 'string' &&
    roles.includes(p.role) &&
    typeof p.exp === 'number'
  ) {
    return {
      sub: p.sub,
      userId: p.sub,
      sid: p.sid,
      role: p.role as UserRole,
      expiresAt: p.exp * 1000,
    };
  }
  return undefined;
}
