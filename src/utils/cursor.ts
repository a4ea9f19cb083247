// Keyset cursors: opaque to clients, base64url of the JSON `[timestamp, id]` of a page's last
// item. Decoding accepts exactly what encoding writes, so a forged cursor is refused before it
// reaches SQL: JavaScript dates run to year ±275760, PostgreSQL's timestamptz does not.

export interface KeysetPosition {
  at: Date;
  id: string;
}

/**
 * `toISOString()` of years 0001–9999, which holds every timestamp the database writes (they
 * come from now()). Other years are spelled `+275760-…` or `-000001-…` and fail here; year 0000
 * is refused below (PostgreSQL has no year zero).
 */
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function encodeCursor(position: KeysetPosition): string {
  return Buffer.from(JSON.stringify([position.at.toISOString(), position.id])).toString(
    'base64url',
  );
}

/** The position a cursor names, or undefined when `encodeCursor` did not write it. */
export function decodeCursor(cursor: string): KeysetPosition | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [at, id] = value as unknown[];
  if (typeof at !== 'string' || typeof id !== 'string') return undefined;
  if (!ISO_TIMESTAMP.test(at) || at.startsWith('0000')) return undefined;
  const position = { at: new Date(at), id };
  if (Number.isNaN(position.at.getTime())) return undefined;
  // Only the exact text encodeCursor writes for this position: no other spelling of the bytes
  // (Buffer skips what it cannot decode), of the JSON, or of the date (02-30 is a Date in March).
  return encodeCursor(position) === cursor ? position : undefined;
}
