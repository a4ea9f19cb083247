// Snippets from a bounded window: the word-position estimate behind headline windows, the
// window itself, and CJK snippets of long texts.
import { describe, expect, it } from 'vitest';
import {
  HEADLINE_WINDOW,
  MARK_END,
  MARK_START,
  buildSnippet,
  headlineWindow,
  wordOffset,
} from '../../src/utils/snippet.js';

/** The word at `position` as the estimate finds it. */
const wordAt = (text: string, position: number) =>
  text.slice(wordOffset(text, position)).split(/\s/, 1)[0];

describe('wordOffset: to_tsvector positions to string offsets', () => {
  it('counts words of prose, stop words and numbers included', () => {
    const text = 'The quick brown fox, 42 times; jumps!';
    expect(wordAt(text, 1)).toBe('The');
    expect(wordAt(text, 4)).toBe('fox,');
    expect(wordAt(text, 5)).toBe('42');
    expect(wordAt(text, 7)).toBe('jumps!');
    expect(wordOffset(text, 8)).toBe(text.length);
  });

  it('counts token shapes as PostgreSQL’s parser numbers them', () => {
    // to_tsvector('english', text) on PostgreSQL 15 puts "target" at 26: the hyphenated word
    // is 5 positions (the compound and its four parts), the date 3, "1,000" 2, the URL 3 (its
    // protocol none), "don't" 2, the tags and the entity none, snake_case 2, the emoji none.
    const text =
      'state-of-the-art 2026-11-24 3.14 1,000 x@example.com https://example.com/a/b?x=1 ' +
      "don't <b>bold</b> &amp; snake_case emoji😀here naïve v1.2.3 /usr/lib/file.so target";
    const before = 5 + 3 + 1 + 2 + 1 + 3 + 2 + 1 + 0 + 2 + 2 + 1 + 1 + 1;
    expect(before + 1).toBe(26);
    expect(wordAt(text, 26)).toBe('target');
    expect(wordAt(text, 25)).toMatch(/lib\/file\.so$/);
  });

  it('reads CJK runs as single words, as the English parser does', () => {
    expect(wordAt('你好世界 こんにちは世界、元気ですか 안녕하세요 target', 5)).toBe('target');
  });
});

describe('headlineWindow', () => {
  const long = Array.from({ length: 6_000 }, (_, i) => `w${i}`).join(' ');

  it('gives a short message whole, without the search marks', () => {
    expect(headlineWindow(`a ${MARK_START}b${MARK_END} c`, null)).toBe('a b c');
  });

  it('gives at most HEADLINE_WINDOW characters of a long one, starting before the match', () => {
    const window = headlineWindow(long, 5_001); // w5000
    expect(window.length).toBeLessThanOrEqual(HEADLINE_WINDOW);
    expect(window).toMatch(/(^| )w5000 /);
    expect(window.indexOf('w5000')).toBeGreaterThan(100);
    // Cut at spaces: whole words at both ends.
    expect(window).toMatch(/^w\d+ .* w\d+$/);
  });

  it('starts at the beginning without a match position, and fits a match at the very end', () => {
    expect(headlineWindow(long, null).startsWith('w0 w1 ')).toBe(true);
    const end = headlineWindow(long, 6_000);
    expect(end.endsWith('w5999')).toBe(true);
    expect(end.length).toBeLessThanOrEqual(HEADLINE_WINDOW);
  });

  it('starts before a CJK match that comes before the first English one', () => {
    const text = `${long} 会议 ${long}`;
    const window = headlineWindow(text, 9_000, ['会议']);
    expect(window).toContain(' 会议 ');
    expect(headlineWindow(text, 10, ['会议'])).toMatch(/(^| )w9 /);
    expect(headlineWindow(text, null, ['不在'])).toMatch(/^w0 /);
  });

  it('never splits a surrogate pair', () => {
    const emoji = '😀'.repeat(2_000);
    const window = headlineWindow(emoji, null);
    expect(window.length).toBeLessThanOrEqual(HEADLINE_WINDOW + 1);
    expect(window).toBe('😀'.repeat(window.length / 2));
  });
});

describe('buildSnippet for CJK matches in a 32,000-character text', () => {
  it('shows the text around a match far into the text, with ellipses, escaped', () => {
    const content = `${'一'.repeat(31_000)}<你好>${'二'.repeat(996)}`;
    expect([...content]).toHaveLength(32_000);
    const snippet = buildSnippet(content, null, ['你好']);
    expect(snippet).toBe(`… ${'一'.repeat(59)}&lt;<mark>你好</mark>&gt;${'二'.repeat(137)} …`);
  });

  it('counts characters, not UTF-16 units, around astral text', () => {
    const content = `${'😀'.repeat(100)}你好${'😀'.repeat(200)}`;
    const snippet = buildSnippet(content, null, ['你好']);
    expect(snippet).toBe(`… ${'😀'.repeat(60)}<mark>你好</mark>${'😀'.repeat(138)} …`);
  });
});
