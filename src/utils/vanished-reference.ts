// A write that referred to a row deleted while the request ran (PostgreSQL's foreign_key_violation,
// 23503): every reference is checked before it is written, so this is a race with a deletion
// (typically an account deleted while a request naming that user was under way), not a bug. The
// caller gets 409 CONFLICT and may try again; nothing was written.

interface CodedError {
  code?: unknown;
  cause?: unknown;
}

export function isVanishedReference(error: unknown): boolean {
  let current: unknown = error;
  // pg errors carry the SQLSTATE themselves; Drizzle and PGlite may wrap them in a cause.
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const candidate = current as CodedError;
    if (candidate.code === '23503') return true;
    current = candidate.cause;
  }
  return false;
}

export const VANISHED_REFERENCE_MESSAGE =
  'Something this request refers to was deleted meanwhile; nothing was changed';
