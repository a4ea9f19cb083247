// JSON body hardening beyond body-parser's defaults.
import { forbiddenEntry } from '../utils/client-input.js';

/**
 * A JSON.parse reviver that refuses NUL characters and prototype-pollution keys anywhere in a
 * body (utils/client-input.ts; Socket.IO events get the same check). Throwing here makes
 * body-parser answer 400.
 */
export function rejectPrototypeKeys(key: string, value: unknown): unknown {
  const problem = forbiddenEntry(key, value);
  if (problem) throw new SyntaxError(`${problem} in a JSON body`);
  return value;
}
