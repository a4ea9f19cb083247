// Builds a search result's snippet: the text around the matches, HTML-escaped, each match in
// <mark>…</mark>. Safe to insert as HTML: the only tags in it are the marks.

export const MARK_START = '\uE000';
export const MARK_END = '\uE001';

const CONTEXT_BEFORE = 60;
const CONTEXT_AFTER = 140;

const escapeHtml = (text: string) =>
  text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');

/** A window of `content` around the first occurrence of any of `terms` (the start if none). */
function windowAround(content: string, terms: readonly string[]): string {
  const hits = terms.map((t) => content.indexOf(t)).filter((i) => i >= 0);
  const at = hits.length ? Math.min(...hits) : 0;
  const chars = [...content];
  // Work in code points so a window never splits an emoji's surrogate pair.
  const atChar = [...content.slice(0, at)].length;
  const start = Math.max(0, atChar - CONTEXT_BEFORE);
  const end = Math.min(chars.length, atChar + CONTEXT_AFTER);
  return `${start > 0 ? '… ' : ''}${chars.slice(start, end).join('')}${end < chars.length ? ' …' : ''}`;
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
  const clean = content.replace(new RegExp(`[${MARK_START}${MARK_END}]`, 'g'), '');
  const base = headline ?? windowAround(clean, cjkRuns);
  return escapeHtml(markTerms(base, cjkRuns))
    .replace(new RegExp(MARK_START, 'g'), '<mark>')
    .replace(new RegExp(MARK_END, 'g'), '</mark>');
}
