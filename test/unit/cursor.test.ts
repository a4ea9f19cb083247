// Keyset cursors (issue 8, acceptance 8): what the server issues decodes to the same position;
// anything else, however close, decodes to nothing, and the list query refuses it.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ListConversationsQuery } from '../../src/schemas/conversation.schemas.js';
import { decodeCursor, encodeCursor } from '../../src/utils/cursor.js';
import { FORGED_CURSORS, FORGED_SHAPES } from '../support/forged-cursors.js';

/** Timestamps PostgreSQL and toISOString() both spell plainly: years 0001–9999. */
const timestamps = fc.date({
  min: new Date('0001-01-01T00:00:00.000Z'),
  max: new Date('9999-12-31T23:59:59.999Z'),
  noInvalidDate: true,
});
const ids = fc.stringMatching(/^[a-z0-9]{1,64}$/);

describe('decodeCursor', () => {
  it('returns the position encodeCursor was given, at the edges of the range too', () => {
    for (const at of [
      '0001-01-01T00:00:00.000Z',
      '9999-12-31T23:59:59.999Z',
      '2026-03-01T12:00:00.001Z',
    ]) {
      const position = { at: new Date(at), id: 'tz4a98xxat96iws9zmbrgj3a' };
      expect(decodeCursor(encodeCursor(position))).toEqual(position);
    }
    fc.assert(
      fc.property(timestamps, ids, (at, id) => {
        expect(decodeCursor(encodeCursor({ at, id }))).toEqual({ at, id });
      }),
    );
  });

  it('accepts nothing but the exact text encodeCursor writes, and never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        const position = decodeCursor(text);
        if (position) expect(encodeCursor(position)).toBe(text);
      }),
    );
    // The same JSON with a space, or the same bytes spelled with padding: not a cursor.
    const json = JSON.stringify(['2026-01-01T00:00:00.000Z', 'abc']);
    expect(
      decodeCursor(Buffer.from(json.replace(',', ', ')).toString('base64url')),
    ).toBeUndefined();
    expect(decodeCursor(Buffer.from(json).toString('base64'))).toBeUndefined();
  });

  it.each(FORGED_SHAPES)('refuses %s', (_label, cursor) => {
    expect(decodeCursor(cursor)).toBeUndefined();
  });
});

describe('ListConversationsQuery.cursor', () => {
  it('decodes a cursor the server issued', () => {
    const at = new Date('2026-05-01T10:20:30.400Z');
    const parsed = ListConversationsQuery.parse({
      cursor: encodeCursor({ at, id: 'tz4a98xxat96iws9zmbrgj3a' }),
    });
    expect(parsed.cursor).toEqual({ at, id: 'tz4a98xxat96iws9zmbrgj3a' });
  });

  it.each(FORGED_CURSORS)('refuses %s, naming the field', (_label, cursor) => {
    const result = ListConversationsQuery.safeParse({ cursor });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toEqual(['cursor']);
  });
});
