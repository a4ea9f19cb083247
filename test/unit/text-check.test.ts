// The streaming UTF-8 check of uploads (issue 10): however a file is cut into chunks, it is text
// exactly when the whole file decodes as UTF-8 without NUL.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TextCheck } from '../../src/services/file-kinds.js';

/** The reference: the whole file at once, with a fatal decoder. */
function isTextWhole(bytes: Uint8Array): boolean {
  if (bytes.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

function isTextInChunks(bytes: Uint8Array, cuts: number[]): boolean {
  const check = new TextCheck();
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let start = 0;
  for (const point of [...points, bytes.length]) {
    if (!check.push(bytes.subarray(start, point))) return false;
    start = point;
  }
  return check.end();
}

describe('TextCheck', () => {
  it('accepts any UTF-8 text however it is chunked (emoji, CJK, accents cut anywhere)', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 200 }),
        fc.array(fc.nat()),
        (text, cuts) => {
          const bytes = Buffer.from(text.replaceAll('\u0000', ''), 'utf8');
          expect(isTextInChunks(bytes, cuts)).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('agrees with a whole-file decoder on arbitrary bytes, chunked anywhere', () => {
    const utf8ish = fc.oneof(
      fc.integer({ min: 0x01, max: 0x7f }),
      fc.integer({ min: 0x80, max: 0xbf }),
      fc.integer({ min: 0xc0, max: 0xff }),
    );
    fc.assert(
      fc.property(fc.array(utf8ish, { maxLength: 40 }), fc.array(fc.nat()), (values, cuts) => {
        const bytes = Uint8Array.from(values);
        expect(isTextInChunks(bytes, cuts)).toBe(isTextWhole(bytes));
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses a file that ends inside a character, a NUL, and an overlong or surrogate form', () => {
    expect(isTextInChunks(Buffer.from([0x61, 0xe4, 0xbd]), [2])).toBe(false);
    expect(isTextInChunks(Buffer.from('ab\u0000c'), [1])).toBe(false);
    expect(isTextInChunks(Buffer.from([0xc0, 0xaf]), [1])).toBe(false);
    expect(isTextInChunks(Buffer.from([0xed, 0xa0, 0x80]), [1, 2])).toBe(false);
    expect(isTextInChunks(Buffer.from('你好 😀', 'utf8'), [1, 4, 8])).toBe(true);
  });
});
