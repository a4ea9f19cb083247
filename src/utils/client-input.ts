// What no client may send, whichever door it comes through (a JSON body or a Socket.IO event):
// NUL characters and lone surrogates (PostgreSQL cannot store them) and the keys prototype
// pollution needs
// ("__proto__" anywhere, "constructor" holding a "prototype"), the shapes secure-json-parse
// refuses. JSON.parse itself only creates plain own properties, but code that later merges such
// an object into another can be tricked, and no request of ours has a reason to send them.

/**
 * Half of a UTF-16 surrogate pair on its own (JSON's "\ud800"): not a character, and PostgreSQL
 * refuses it in jsonb. In a `u` regular expression a well-formed pair is one code point, so only
 * lone halves match.
 */
const LONE_SURROGATE = /\p{Cs}/u;
const NOT_UNICODE = 'Text must be valid Unicode (a lone surrogate is not)';

/** Why one key and its value are refused, or undefined when they are fine. */
export function forbiddenEntry(key: string, value: unknown): string | undefined {
  if (key === '__proto__') return 'Forbidden key "__proto__"';
  if (key.includes('\u0000')) return 'NUL characters are not allowed';
  if (LONE_SURROGATE.test(key)) return NOT_UNICODE;
  if (typeof value === 'string') {
    if (value.includes('\u0000')) return 'NUL characters are not allowed';
    if (LONE_SURROGATE.test(value)) return NOT_UNICODE;
  }
  if (key === 'constructor' && value !== null && typeof value === 'object' && 'prototype' in value)
    return 'Forbidden key "constructor.prototype"';
  return undefined;
}

/**
 * Walks a parsed payload (iteratively: a deeply nested one cannot overflow the stack) and says
 * why it is refused, or undefined. Binary parts are left to the schema, which refuses them.
 */
export function findForbiddenInput(payload: unknown): string | undefined {
  const pending: Array<[string, unknown]> = [['', payload]];
  while (pending.length > 0) {
    const [key, value] = pending.pop()!;
    const problem = forbiddenEntry(key, value);
    if (problem) return problem;
    if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) continue;
    if (value instanceof ArrayBuffer) continue;
    for (const child of Object.keys(value)) {
      pending.push([child, (value as Record<string, unknown>)[child]]);
    }
  }
  return undefined;
}
