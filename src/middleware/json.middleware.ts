// JSON body hardening beyond body-parser's defaults.

/**
 * A JSON.parse reviver that refuses NUL characters, and "__proto__" keys and
 * "constructor.prototype" anywhere in a body (the shapes secure-json-parse refuses). JSON.parse itself only creates plain own
 * properties, but code that later merges such an object into another can be tricked into
 * prototype pollution, and no request of ours has a reason to send them. Throwing here makes
 * body-parser answer 400.
 */
export function rejectPrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__') throw new SyntaxError('Forbidden key "__proto__" in JSON body');
  // PostgreSQL text cannot hold NUL; refusing it here keeps it from ever reaching a query.
  if ((typeof value === 'string' && value.includes('\u0000')) || key.includes('\u0000')) {
    throw new SyntaxError('NUL characters are not allowed in JSON strings');
  }
  if (
    key === 'constructor' &&
    value !== null &&
    typeof value === 'object' &&
    'prototype' in value
  ) {
    throw new SyntaxError('Forbidden key "constructor.prototype" in JSON body');
  }
  return value;
}
