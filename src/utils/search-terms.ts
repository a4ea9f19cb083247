// Splits a search box's text into what the search index holds: English words (stemmed by
// PostgreSQL) and runs of CJK characters (indexed as overlapping bigrams, migration 0001).

/** Hiragana, katakana, CJK ideographs (and extension A, compatibility), Hangul syllables. */
const CJK_CLASS = '\\u3040-\\u30ff\\u3400-\\u4dbf\\u4e00-\\u9fff\\uac00-\\ud7af\\uf900-\\ufaff';
const CJK_RUN = new RegExp(`[${CJK_CLASS}]+`, 'g');

/** Bounds the size of the tsquery one request can build. */
const MAX_CJK_RUNS = 8;

export interface ParsedSearch {
  words: string;
  /** Runs of two or more characters, as space-separated bigrams: "你好世界" → "你好 好世 世界". */
  cjkBigrams: string[];
  /** Runs of one character. */
  cjkChars: string[];
  /** Every CJK run as typed, for highlighting. */
  cjkRuns: string[];
}

export function parseSearch(text: string): ParsedSearch {
  const runs = [...new Set(text.match(CJK_RUN) ?? [])].slice(0, MAX_CJK_RUNS);
  const words = text.replace(CJK_RUN, ' ').replace(/\s+/g, ' ').trim();
  const cjkBigrams: string[] = [];
  const cjkChars: string[] = [];
  for (const run of runs) {
    const chars = [...run];
    if (chars.length === 1) cjkChars.push(run);
    else
      cjkBigrams.push(
        chars
          .slice(0, -1)
          .map((char, i) => char + chars[i + 1])
          .join(' '),
      );
  }
  return { words, cjkBigrams, cjkChars, cjkRuns: runs };
}
