// A small Markdown renderer that builds DOM nodes directly: text always lands in text nodes, so no
// HTML written in a message (by a person or the model) can ever become markup. Links keep only
// http, https and mailto targets.
import { h } from './dom.js';

const SAFE_LINK = /^(https?:|mailto:)/i;

/** Blocks: fenced code, headings, block quotes, lists, paragraphs. */
export function renderMarkdown(text: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    const fence = /^\s*(```|~~~)\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !(lines[i] ?? '').trim().startsWith(fence[1] ?? '```'))
        body.push(lines[i++] ?? '');
      i++;
      const code = h('code', fence[2] ? { 'data-lang': fence[2] } : {}, body.join('\n'));
      out.append(h('pre', {}, code));
      continue;
    }
    if (!line.trim()) {
      i++;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      const level = Math.min(6, (heading[1] ?? '#').length + 2) as 3 | 4 | 5 | 6;
      out.append(h(`h${level}`, {}, inline(heading[2] ?? '')));
      i++;
      continue;
    }
    if (/^\s*>/.test(line)) {
      const quoted: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i] ?? ''))
        quoted.push((lines[i++] ?? '').replace(/^\s*>\s?/, ''));
      out.append(h('blockquote', {}, renderMarkdown(quoted.join('\n'))));
      continue;
    }
    const bullet = /^\s*([-*+]|\d+[.)])\s+/;
    if (bullet.test(line)) {
      const ordered = /^\s*\d/.test(line);
      const list = h(ordered ? 'ol' : 'ul');
      while (i < lines.length && bullet.test(lines[i] ?? ''))
        list.append(h('li', {}, inline((lines[i++] ?? '').replace(bullet, ''))));
      out.append(list);
      continue;
    }
    const paragraph: string[] = [];
    while (i < lines.length && (lines[i] ?? '').trim() && !startsBlock(lines[i] ?? ''))
      paragraph.push(lines[i++] ?? '');
    const p = h('p');
    paragraph.forEach((text, n) => {
      if (n > 0) p.append(h('br'));
      p.append(inline(text));
    });
    out.append(p);
  }
  return out;
}

function startsBlock(line: string): boolean {
  return /^(\s*(```|~~~)|#{1,6}\s|\s*>|\s*([-*+]|\d+[.)])\s+)/.test(line);
}

/** Inline spans: `code`, **strong**, *em* / _em_, [text](url), bare http(s) links. */
export function inline(text: string): DocumentFragment {
  const out = document.createDocumentFragment();
  const pattern =
    /`([^`]+)`|\*\*([^*]+)\*\*|__([^_]+)__|\*([^*\s][^*]*)\*|\b_([^_\s][^_]*)_\b|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    const at = match.index;
    if (at > last) out.append(text.slice(last, at));
    const [whole, code, strong1, strong2, em1, em2, label, href, bare] = match;
    if (code !== undefined) out.append(h('code', {}, code));
    else if (strong1 ?? strong2) out.append(h('strong', {}, inline(strong1 ?? strong2 ?? '')));
    else if (em1 ?? em2) out.append(h('em', {}, inline(em1 ?? em2 ?? '')));
    else if (label !== undefined && href !== undefined)
      out.append(SAFE_LINK.test(href) ? link(href, inline(label)) : whole);
    else if (bare) out.append(link(bare, bare));
    last = at + whole.length;
  }
  if (last < text.length) out.append(text.slice(last));
  return out;
}

function link(href: string, content: Node | string): HTMLAnchorElement {
  return h('a', { href, target: '_blank', rel: 'noopener noreferrer nofollow' }, content);
}
