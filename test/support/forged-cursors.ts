// Cursor values no server issued, for every query parameter that carries a page position
// (cursor, before, after): each must be a 400, never a 500. The dates are ones a JavaScript
// Date accepts and PostgreSQL does not, the shapes the ones a lax decoder lets through.

const ID = 'tz4a98xxat96iws9zmbrgj3a';
const AT = '2026-01-01T00:00:00.000Z';

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

type Forged = ReadonlyArray<readonly [label: string, value: string]>;

/** Cursors of a well-formed `[timestamp, id]` whose id is no id: the Id schema refuses them. */
export const FORGED_ID_CURSORS: Forged = [
  ['an uppercase id', encode([AT, ID.toUpperCase()])],
  ['an id of 65 characters', encode([AT, 'a'.repeat(65)])],
  ['an empty id', encode([AT, ''])],
  ['an id with SQL', encode([AT, "x' or '1'='1"])],
];

/** Base64url JSON of the wrong thing, then plain junk: the decoder itself refuses these. */
export const FORGED_SHAPES: Forged = [
  ['year +275760 (the last JS date)', encode(['+275760-09-13T00:00:00.000Z', ID])],
  ['year 0000', encode(['0000-01-01T00:00:00.000Z', ID])],
  ['year -000001', encode(['-000001-01-01T00:00:00.000Z', ID])],
  ['year 10000', encode(['+010000-01-01T00:00:00.000Z', ID])],
  ['February 30th', encode(['2026-02-30T00:00:00.000Z', ID])],
  ['hour 24', encode(['2026-01-01T24:00:00.000Z', ID])],
  ['no milliseconds', encode(['2026-01-01T00:00:00Z', ID])],
  ['a time zone offset', encode(['2026-01-01T01:00:00.000+01:00', ID])],
  ['a date only', encode(['2026-01-01', ID])],
  ['a number for the date', encode([1e308, ID])],
  ['epoch milliseconds', encode([Date.parse(AT), ID])],
  ['a number for the id', encode([AT, 1e308])],
  ['an object for the date', encode([{ $date: AT }, ID])],
  ['nested arrays', encode([[AT], [ID]])],
  ['null and null', encode([null, null])],
  ['booleans', encode([true, false])],
  ['an extra element', encode([AT, ID, 'extra'])],
  ['one element', encode([AT])],
  ['an empty array', encode([])],
  ['an object of the right fields', encode({ at: AT, id: ID })],
  [
    'an object with __proto__',
    Buffer.from(`{"__proto__":{"x":1},"0":"${AT}"}`).toString('base64url'),
  ],
  ['a string', encode('cursor')],
  ['a huge number', encode(1e308)],
  ['null', encode(null)],
  ['another shape: a sort key and a direction', encode({ createdAt: AT, id: ID, dir: 'desc' })],
  ['not base64', '!!!not-base64!!!'],
  ['base64 with padding', `${encode([AT, ID])}==`],
  ['standard base64 (+ and /)', Buffer.from(`[">>>?${AT}", "${ID}"]`).toString('base64')],
  ['base64 of non-JSON', Buffer.from('hello world').toString('base64url')],
  ['base64 of invalid UTF-8', Buffer.from([0xff, 0xfe, 0xfd]).toString('base64url')],
  ['truncated', encode([AT, ID]).slice(0, -3)],
  ['longer than any cursor', 'A'.repeat(300)],
  ['empty', ''],
  ['a blank', ' '],
  ['emoji', '💥💥💥'],
  ['1e308', '1e308'],
  ['a negative number', '-1'],
];

/** [label, the value as sent] for every forged cursor. */
export const FORGED_CURSORS: Forged = [...FORGED_SHAPES, ...FORGED_ID_CURSORS];
