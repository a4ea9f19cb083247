// Builds a search result's snippet: the text around the matches, HTML-escaped, each match in
// <mark>…</mark>. Safe to insert as HTML: the only tags in it are the marks. Every step works on
// a bounded window of the message, so a 32,000-character message costs what a short one does.

export const MARK_START = '\uE000';
export const MARK_END = '\uE001';

const CONTEXT_BEFORE = 60;
const CONTEXT_AFTER = 140;

/**
 * The most of a message PostgreSQL's ts_headline is given. ts_headline parses all of its input
 * (about 0.1 ms per 1,000 characters on PostgreSQL, several times that on PGlite, and far more
 * for phrase queries), so a whole 32,000-character message made one search cost tens of
 * milliseconds of database time per row.
 */
export const HEADLINE_WINDOW = 800;
/**
 * How far before the estimated first match the window starts: room for the estimate to land
 * late (wordOffset counts a few rare token shapes as fewer words than PostgreSQL does).
 */
const HEADLINE_LEAD = 200;

const MARKS = new RegExp(`[${MARK_START}${MARK_END}]`, 'g');

// What PostgreSQL's default text-search parser counts as one position, closely enough to find
// a word in a long text: a run of letters and digits counts once, and so does one joined by
// . @ / (a host, an e-mail address, a path, a number); a hyphenated word counts the compound and
// each part (well-known: 3), numbers joined by hyphens count each (2026-11-24: 3); markup tags,
// entities and URL protocols count nothing. A hand-written scan rather than one regular
// expression (four times faster): it runs over up to 32,000 characters of each long result, on
// the event loop.

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;
/** Per UTF-16 unit outside ASCII: 0 not yet known, 1 letter or digit, 2 neither. */
const nonAsciiClass = new Uint8Array(0x10000);

function isWordUnit(code: number): boolean {
  if (code < 0x80) {
    return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
  }
  // Astral characters (emoji, mostly) are not words to the parser in a UTF-8 locale.
  if (code >= 0xd800 && code <= 0xdfff) return false;
  if (nonAsciiClass[code] === 0) {
    nonAsciiClass[code] = LETTER_OR_DIGIT.test(String.fromCharCode(code)) ? 1 : 2;
  }
  return nonAsciiClass[code] === 1;
}

const isDigit = (code: number) => code >= 48 && code <= 57;
const isJoiner = (code: number) => code === 46 || code === 64 || code === 47 || code === 45; // . @ / -
/** A markup tag or an entity, tried where a `<` or `&` is. */
const MARKUP = /<\/?[A-Za-z][^<>]{0,200}>|&(?:[A-Za-z]{1,20}|#\d{1,7});/y;

/** The end of the word starting at `start`, and how many positions the parser gives it. */
function scanWord(text: string, start: number): { end: number; positions: number } {
  let i = start;
  let parts = 1;
  let joinedHost = false; // . @ or / between parts
  let nonAscii = false;
  let at = -1;
  let dotAfterAt = false;
  let numericPart = false; // a part after the first made only of digits
  let partDigits = true;
  for (; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (isWordUnit(code)) {
      if (code >= 0x80) nonAscii = true;
      if (!isDigit(code)) partDigits = false;
      continue;
    }
    if (!isJoiner(code) || i + 1 >= text.length || !isWordUnit(text.charCodeAt(i + 1))) break;
    if (parts > 1 && partDigits) numericPart = true;
    if (code !== 45) {
      joinedHost = true;
      if (code === 64) at = i;
      else if (code === 46 && at >= 0) dotAfterAt = true;
    }
    parts += 1;
    partDigits = true;
  }
  if (parts > 1 && partDigits) numericPart = true;
  if (joinedHost) {
    // An ASCII host, address or path is one token; the parser splits the others.
    return { end: i, positions: !nonAscii && (at < 0 || dotAfterAt) ? 1 : parts };
  }
  if (parts === 1) return { end: i, positions: 1 };
  return { end: i, positions: numericPart ? parts : parts + 1 };
}

/**
 * Where word `position` (1-based, as to_tsvector numbers words) starts in `text`: an estimate,
 * exact for ordinary prose, that can drift by a word for some URLs, hyphenated numbers and
 * hosts. Past the last word: the text's length.
 */
export function wordOffset(text: string, position: number): number {
  let seen = 0;
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code === 60 || code === 38) {
      MARKUP.lastIndex = i;
      if (MARKUP.test(text)) {
        i = MARKUP.lastIndex;
        continue;
      }
    }
    if (!isWordUnit(code)) {
      i += 1;
      continue;
    }
    const word = scanWord(text, i);
    if (text.startsWith('://', word.end)) {
      i = word.end + 3; // a URL's protocol
      continue;
    }
    seen += word.positions;
    if (seen >= position) return i;
    i = word.end;
  }
  return text.length;
}

/** Moves `index` off the middle of a surrogate pair. */
const onCodePoint = (text: string, index: number) =>
  /[\udc00-\udfff]/.test(text.charAt(index)) ? index + 1 : index;

/** Where each of `terms` first occurs in `content` (those that occur). */
const occurrences = (content: string, terms: readonly string[]) =>
  terms.map((t) => content.indexOf(t)).filter((i) => i >= 0);

/**
 * The part of `content` ts_headline gets: all of it when short; else HEADLINE_WINDOW characters
 * starting a little before the first match, cut at spaces where possible. The first match is the
 * earlier of the query's first word (`firstMatch`: the smallest position of its words in the
 * message's search vector) and the first of its CJK runs; with neither, the start. The search
 * marks are removed: they are the headline's own.
 */
export function headlineWindow(
  content: string,
  firstMatch: number | null,
  cjkRuns: readonly string[] = [],
): string {
  if (content.length <= HEADLINE_WINDOW) return content.replace(MARKS, '');
  const matches = occurrences(content, cjkRuns);
  if (firstMatch !== null) matches.push(wordOffset(content, firstMatch));
  const at = matches.length ? Math.min(...matches) : 0;
  let start = Math.max(0, Math.min(at - HEADLINE_LEAD, content.length - HEADLINE_WINDOW));
  let end = start + HEADLINE_WINDOW;
  if (start > 0) {
    const space = content.indexOf(' ', start);
    if (space >= 0 && space < at) start = space + 1;
  }
  if (end < content.length) {
    const space = content.lastIndexOf(' ', end);
    if (space > at) end = space;
  }
  return content.slice(onCodePoint(content, start), onCodePoint(content, end)).replace(MARKS, '');
}

const escapeHtml = (text: string) =>
  text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

/** A window of `content` around the first occurrence of any of `terms` (the start if none). */
function windowAround(content: string, terms: readonly string[]): string {
  const hits = occurrences(content, terms);
  const at = hits.length ? Math.min(...hits) : 0;
  // Code points, so a window never splits an emoji's surrogate pair; only the neighbourhood of
  // the match is split into them (each code point is at most two UTF-16 units).
  const from = onCodePoint(content, Math.max(0, at - 2 * CONTEXT_BEFORE));
  const to = onCodePoint(content, Math.min(content.length, at + 2 * CONTEXT_AFTER));
  const before = [...content.slice(from, at)];
  const after = [...content.slice(at, to)];
  const start = Math.max(0, before.length - CONTEXT_BEFORE);
  const text = [...before.slice(start), ...after.slice(0, CONTEXT_AFTER)].join('');
  const cutBefore = from > 0 || start > 0;
  const cutAfter = to < content.length || after.length > CONTEXT_AFTER;
  return `${cutBefore ? '… ' : ''}${text}${cutAfter ? ' …' : ''}`;
}

/** Wraps each occurrence of the terms (longest first) in marks, outside existing marks. */
function markTerms(text: string, terms: readonly string[]): string {
  if (terms.length === 0) return text;
  const sorted = [...terms].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(
    sorted.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'),
    'g',
  );
  const marked = new RegExp(`(${MARK_START}[^${MARK_END}]*${MARK_END})`);
  return text
    .split(marked)
    .map((part) =>
      part.startsWith(MARK_START) ? part : part.replace(pattern, `${MARK_START}$&${MARK_END}`),
    )
    .join('');
}

/**
 * @param content the message text (raw)
 * @param headline PostgreSQL's ts_headline for the English words, with U+E000/U+E001 marks
 * @param cjkRuns CJK text the query contained, highlighted here (ts_headline cannot)
 */
export function buildSnippet(
  content: string,
  headline: string | null,
  cjkRuns: readonly string[],
): string {
  // A headline without a match (the English words were all stop words) gives way to the text
  // around the CJK match.
  const useHeadline = headline !== null && (headline.includes(MARK_START) || cjkRuns.length === 0);
  const base = useHeadline ? headline : windowAround(content.replace(MARKS, ''), cjkRuns);
  return escapeHtml(markTerms(base, cjkRuns))
    .replace(new RegExp(MARK_START, 'g'), '<mark>')
    .replace(new RegExp(MARK_END, 'g'), '</mark>');
}
