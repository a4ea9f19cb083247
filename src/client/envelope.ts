// The API's response envelope, read in one place (REST calls and the session's refresh alike).
import { ParleyError } from './types.js';

/** The envelope's data, or its error thrown as a ParleyError. */
export async function unwrap<T>(response: Response): Promise<T> {
  const body = (await response.json().catch(() => null)) as {
    success?: boolean;
    data?: T;
    error?: string;
    code?: string;
    details?: unknown;
  } | null;
  if (response.ok && body?.success) return body.data as T;
  throw new ParleyError(
    body?.error ?? `HTTP ${response.status}`,
    response.status,
    body?.code ?? 'HTTP_ERROR',
    body?.details,
  );
}
