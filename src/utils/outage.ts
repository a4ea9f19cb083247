// Errors that mean a service we depend on (PostgreSQL, Redis) cannot be reached right now, as
// opposed to a bug: the caller gets 503 UNAVAILABLE and may try again (SPEC §2).

const NETWORK_CODES =
  /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|EAI_AGAIN)$/;
/** PostgreSQL: connection exceptions (08…), shutting down or starting up (57P01–57P03), too many connections. */
const POSTGRES_CODES = /^(08\d\d\d|57P0[123]|53300)$/;
const MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Connection is closed|enableOfflineQueue|Command timed out|Stream isn't writeable|Redis connection is not ready|Query read timeout/i;

export function isOutage(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'MaxRetriesPerRequestError') return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (NETWORK_CODES.test(code) || POSTGRES_CODES.test(code)))
    return true;
  return MESSAGES.test(error.message);
}
