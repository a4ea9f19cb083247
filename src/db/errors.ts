// Recognises PostgreSQL errors by SQLSTATE, whether they come from pg, PGlite or wrapped by Drizzle.

interface PgErrorLike {
  code?: unknown;
  constraint?: unknown;
  cause?: unknown;
}

function findPgError(error: unknown): PgErrorLike | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current && typeof current === 'object'; depth++) {
    const candidate = current as PgErrorLike;
    if (typeof candidate.code === 'string' && /^[0-9A-Z]{5}$/.test(candidate.code))
      return candidate;
    current = candidate.cause;
  }
  return undefined;
}

/** True for a unique violation, optionally on one named constraint or unique index. */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  const pgError = findPgError(error);
  if (pgError?.code !== '23505') return false;
  return constraint === undefined || pgError.constraint === constraint;
}

/** True when PostgreSQL chose this transaction to undo: a deadlock or a serialization failure. */
export function isTransactionConflict(error: unknown): boolean {
  const code = findPgError(error)?.code;
  return code === '40P01' || code === '40001';
}

/**
 * Runs a transaction again when PostgreSQL undid it for a deadlock: what it did was rolled back,
 * and a second try, after the other transaction, succeeds. Writers take locks in one order (parent
 * before child, the conversation's row last), so this is the exception, not a loop.
 */
export async function retryOnConflict<T>(run: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if (attempt >= attempts || !isTransactionConflict(error)) throw error;
    }
  }
}

/**
 * True when PostgreSQL cancelled the statement (SQLSTATE 57014: statement_timeout, or a cancel
 * request).
 */
export function isStatementTimeout(error: unknown): boolean {
  return findPgError(error)?.code === '57014';
}
