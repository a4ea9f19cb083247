// Message bodies no client may send, as raw JSON: the corpus both doors (POST …/messages and the
// message:send socket event) must refuse alike, with a validation error and nothing stored.

const big = (chars: number) => 'x'.repeat(chars);

export const BAD_MESSAGE_BODIES: ReadonlyArray<{ why: string; raw: string }> = [
  { why: 'NUL in content', raw: '{"content":"a\\u0000b"}' },
  { why: 'NUL in a metadata key', raw: '{"content":"hi","metadata":{"a\\u0000":1}}' },
  { why: 'NUL deep in metadata', raw: '{"content":"hi","metadata":{"a":{"b":["c\\u0000"]}}}' },
  { why: 'a lone surrogate in content', raw: '{"content":"hi \\ud800 there"}' },
  { why: 'a lone surrogate in metadata', raw: '{"content":"hi","metadata":{"a":"\\udfff"}}' },
  { why: 'a lone surrogate in a metadata key', raw: '{"content":"hi","metadata":{"\\ud83d":1}}' },
  { why: '__proto__ at the top', raw: '{"content":"hi","__proto__":{"isAdmin":true}}' },
  { why: '__proto__ in metadata', raw: '{"content":"hi","metadata":{"__proto__":{"x":1}}}' },
  {
    why: 'constructor.prototype in metadata',
    raw: '{"content":"hi","metadata":{"constructor":{"prototype":{"x":1}}}}',
  },
  {
    why: 'constructor.prototype deep in metadata',
    raw: '{"content":"hi","metadata":{"a":[{"constructor":{"prototype":{}}}]}}',
  },
  { why: 'content over 32,000 characters', raw: JSON.stringify({ content: big(32_001) }) },
  { why: 'blank content', raw: '{"content":"   \\n\\t "}' },
  { why: 'empty content', raw: '{"content":""}' },
  { why: 'no content', raw: '{"type":"TEXT"}' },
  { why: 'content of the wrong type', raw: '{"content":42}' },
  { why: 'null content', raw: '{"content":null}' },
  {
    why: 'metadata over 8 KiB',
    raw: JSON.stringify({ content: 'hi', metadata: { blob: big(9_000) } }),
  },
  { why: 'metadata that is an array', raw: '{"content":"hi","metadata":[1,2]}' },
  { why: 'an unknown field', raw: '{"content":"hi","role":"ASSISTANT"}' },
  { why: 'a type clients may not choose', raw: '{"content":"hi","type":"IMAGE"}' },
  {
    why: 'eleven attachments',
    raw: JSON.stringify({
      content: 'hi',
      attachments: Array.from({ length: 11 }, (_, i) => `a${i}`),
    }),
  },
  { why: 'a path as an attachment id', raw: '{"content":"hi","attachments":["../../etc/passwd"]}' },
  { why: 'a bad clientMessageId', raw: '{"content":"hi","clientMessageId":"has spaces"}' },
  { why: 'a bad parentId', raw: '{"content":"hi","parentId":"../x"}' },
  { why: 'ai that is not a boolean', raw: '{"content":"hi","ai":"yes"}' },
];
