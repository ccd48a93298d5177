// A small markdown renderer for the documents the crawler stored: headings (with ids), paragraphs,
// lists, block quotes, code fences, tables, links, emphasis and code spans. It builds DOM nodes and
// puts all text in text nodes, so nothing in a document can become markup: raw HTML in the
// markdown shows as the text it is, and links keep only http(s) and mailto addresses.

import {h, add, safeURL} from './dom.js';

const FENCE = /^( {0,3})(`{3,}|~{3,})[ \t]*([^\s`]*)/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const HR = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const LIST = /^( *)([-*+]|\d{1,9}[.)])(?:([ \t]+)(.*))?$/;
const TABLE_DELIM = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const REF_DEF = /^ {0,3}\[([^\]]{1,200})\]:[ \t]*<?([^\s>]+)>?(?:[ \t]+(?:"[^"]*"|'[^']*'|\([^)]*\)))?[ \t]*$/;
const PUNCT = /[!-/:-@[-`{-~]/;
const WORD = /[\p{L}\p{N}]/u;

// renderMarkdown returns a DocumentFragment. opts.base is the page's own URL, which relative links
// resolve against; opts.fragment(anchor) gives the href of a link to a section of the same page
// (without it such links are plain text).
export function renderMarkdown(src, opts = {}) {
  const lines = String(src ?? '').replace(/\r\n?/g, '\n').split('\n');
  const ctx = {base: opts.base || '', fragment: opts.fragment, slugs: new Map(), refs: new Map()};
  const body = referenceDefinitions(lines, ctx);
  return add(document.createDocumentFragment(), blocks(body, ctx));
}

// slug is the id a heading gets when the page gave none: GitHub's, the same the extractor makes.
export function slug(text) {
  return text.toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
}

// referenceDefinitions takes the "[label]: url" lines out (outside code fences) into ctx.refs.
function referenceDefinitions(lines, ctx) {
  const out = [];
  let fence = null;
  for (const line of lines) {
    const f = FENCE.exec(line);
    if (fence) {
      if (f && f[2][0] === fence[0] && f[2].length >= fence.length && f[3] === '') fence = null;
    } else if (f) {
      fence = f[2];
    } else {
      const m = REF_DEF.exec(line);
      if (m) {
        const key = refKey(m[1]);
        if (!ctx.refs.has(key)) ctx.refs.set(key, m[2]);
        continue;
      }
    }
    out.push(line);
  }
  return out;
}

function refKey(label) {
  return label.trim().replace(/\s+/g, ' ').toLowerCase();
}

function isTableStart(lines, i) {
  return lines[i].includes('|') && i + 1 < lines.length && lines[i + 1].includes('|') &&
    lines[i + 1].includes('-') && TABLE_DELIM.test(lines[i + 1]);
}

// startsBlock says whether line i begins a block that ends a paragraph before it.
function startsBlock(lines, i) {
  const line = lines[i];
  if (FENCE.test(line) || HEADING.test(line) || HR.test(line) || QUOTE.test(line) || isTableStart(lines, i)) {
    return true;
  }
  const m = LIST.exec(line);
  // As in CommonMark, only a bullet or "1." interrupts a paragraph, and not when empty: "2024. It
  // was" in running text is not a list.
  return !!(m && m[4] && m[4].trim() !== '' && (!/\d/.test(m[2]) || parseInt(m[2], 10) === 1));
}

function blocks(lines, ctx) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.trim() === '') {
      i++;
      continue;
    }
    let m;
    if ((m = FENCE.exec(line))) {
      i = codeFence(lines, i, m, out);
      continue;
    }
    if ((m = HEADING.exec(line))) {
      out.push(heading(m[1].length, m[2] || '', ctx));
      i++;
      continue;
    }
    if (HR.test(line)) {
      out.push(h('hr'));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && lines[i].trim() !== '') {
        const q = QUOTE.exec(lines[i]);
        if (!q && startsBlock(lines, i)) break;
        inner.push(q ? q[1] : lines[i]);
        i++;
      }
      out.push(h('blockquote', {}, blocks(inner, ctx)));
      continue;
    }
    if (isTableStart(lines, i)) {
      i = table(lines, i, ctx, out);
      continue;
    }
    if (LIST.test(line) && !HR.test(line)) {
      i = list(lines, i, ctx, out);
      continue;
    }
    const para = [line.trim()];
    i++;
    let level = 0;
    while (i < lines.length && lines[i].trim() !== '') {
      const s = SETEXT.exec(lines[i]);
      if (s) {
        level = s[1][0] === '=' ? 1 : 2;
        i++;
        break;
      }
      if (startsBlock(lines, i)) break;
      para.push(lines[i].replace(/^[ \t]+/, ''));
      i++;
    }
    const text = para.join('\n');
    out.push(level ? heading(level, text.replace(/\s+$/, ''), ctx) : h('p', {}, inline(text, ctx)));
  }
  return out;
}

function codeFence(lines, i, m, out) {
  const indent = m[1].length;
  const marker = m[2];
  const lang = m[3].replace(/[^\w+#.-]/g, '');
  const body = [];
  i++;
  while (i < lines.length) {
    const f = FENCE.exec(lines[i]);
    if (f && f[2][0] === marker[0] && f[2].length >= marker.length && lines[i].trim() === f[2]) {
      i++;
      break;
    }
    // The fence's own indentation is not part of the code.
    body.push(lines[i].replace(new RegExp(`^ {0,${indent}}`), ''));
    i++;
  }
  out.push(h('pre', {}, h('code', {class: lang ? `language-${lang}` : null}, body.join('\n'))));
  return i;
}

function heading(level, text, ctx) {
  const el = h(`h${level}`, {}, inline(text, ctx));
  let id = slug(el.textContent);
  const n = ctx.slugs.get(id) || 0;
  ctx.slugs.set(id, n + 1);
  if (n > 0) id += `-${n}`;
  if (id) el.id = id;
  return el;
}

// splitRow cuts a table row into cells at the pipes that are not escaped.
function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const cells = [];
  let cur = '';
  for (let k = 0; k < s.length; k++) {
    if (s[k] === '\\' && s[k + 1] === '|') {
      cur += '|';
      k++;
    } else if (s[k] === '|') {
      cells.push(cur.trim());
      cur = '';
    } else {
      cur += s[k];
    }
  }
  cells.push(cur.trim());
  return cells;
}

function table(lines, i, ctx, out) {
  const head = splitRow(lines[i]);
  const aligns = splitRow(lines[i + 1]).map((d) => {
    const left = d.startsWith(':');
    const right = d.endsWith(':');
    return left && right ? 'al-center' : right ? 'al-right' : null;
  });
  i += 2;
  const rows = [];
  while (i < lines.length && lines[i].trim() !== '' && !(startsBlock(lines, i) && !lines[i].includes('|'))) {
    rows.push(splitRow(lines[i]));
    i++;
  }
  const cell = (tag, text, k) => h(tag, {class: aligns[k]}, inline(text, ctx));
  out.push(h('div', {class: 'table-wrap'}, h('table', {},
    h('thead', {}, h('tr', {}, head.map((c, k) => cell('th', c, k)))),
    rows.length ? h('tbody', {}, rows.map((r) => h('tr', {}, head.map((_, k) => cell('td', r[k] ?? '', k))))) : null,
  )));
  return i;
}

function list(lines, i, ctx, out) {
  const first = LIST.exec(lines[i]);
  const ordered = /\d/.test(first[2]);
  const delim = first[2].slice(-1);
  const items = [];
  let loose = false;
  while (i < lines.length) {
    const m = LIST.exec(lines[i]);
    if (!m || HR.test(lines[i]) || /\d/.test(m[2]) !== ordered || m[2].slice(-1) !== delim) break;
    const spaces = m[3] ? m[3].replace(/\t/g, '    ').length : 1;
    const offset = m[1].length + m[2].length + (spaces > 4 ? 1 : spaces);
    const body = [m[4] || ''];
    i++;
    let blank = false;
    while (i < lines.length) {
      const line = lines[i];
      if (line.trim() === '') {
        body.push('');
        blank = true;
        i++;
        continue;
      }
      const indent = line.match(/^ */)[0].length;
      if (indent >= offset) {
        if (blank && body.some((l) => l.trim() !== '')) loose = true;
        body.push(line.slice(offset));
      } else if (!blank && !LIST.test(line) && !startsBlock(lines, i)) {
        body.push(line.trim()); // a lazy continuation of the item's paragraph
      } else {
        break;
      }
      blank = false;
      i++;
    }
    while (body.length && body[body.length - 1].trim() === '') body.pop();
    items.push(body);
    const next = i < lines.length ? LIST.exec(lines[i]) : null;
    if (blank && next && /\d/.test(next[2]) === ordered) loose = true;
  }
  const lis = items.map((body) => {
    const kids = blocks(body, ctx);
    // A tight list's items are their text, not paragraphs.
    return h('li', {}, loose ? kids : kids.map((k) => (k.tagName === 'P' ? [...k.childNodes] : k)));
  });
  const start = ordered ? parseInt(first[2], 10) : 1;
  out.push(ordered ? h('ol', {start: start !== 1 ? start : null}, lis) : h('ul', {}, lis));
  return i;
}

const ENTITIES = {amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', copy: '©', mdash: '—', ndash: '–', hellip: '…'};

// entity decodes the character reference at text[i] ("&amp;", "&#39;"), or returns null.
function entity(text, i) {
  const m = /^&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([a-zA-Z]{2,8}));/.exec(text.slice(i, i + 12));
  if (!m) return null;
  let ch;
  if (m[3]) ch = ENTITIES[m[3]];
  else {
    const cp = m[1] ? parseInt(m[1], 10) : parseInt(m[2], 16);
    ch = cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : '\ufffd';
  }
  return ch === undefined ? null : {ch, end: i + m[0].length};
}

// inline renders a paragraph's text. inLink stops links nesting inside links.
function inline(text, ctx, inLink = false) {
  const out = [];
  let buf = '';
  const flush = () => {
    if (buf) out.push(document.createTextNode(buf));
    buf = '';
  };
  // Delimiter runs already known to have no closer, so that a paragraph full of lone "*" stays linear.
  const unclosed = new Set();
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') {
      const next = text[i + 1];
      if (next === '\n') {
        flush();
        out.push(h('br'));
        i += 2;
      } else if (next && PUNCT.test(next)) {
        buf += next;
        i += 2;
      } else {
        buf += c;
        i++;
      }
      continue;
    }
    if (c === '`') {
      const n = runLength(text, i, '`');
      const close = closingTicks(text, i + n, n);
      if (close < 0) {
        buf += '`'.repeat(n);
        i += n;
        continue;
      }
      let code = text.slice(i + n, close).replace(/\n/g, ' ');
      if (code.length > 2 && code.startsWith(' ') && code.endsWith(' ') && code.trim() !== '') code = code.slice(1, -1);
      flush();
      out.push(h('code', {}, code));
      i = close + n;
      continue;
    }
    if (c === '\n') {
      if (buf.endsWith('  ')) {
        buf = buf.replace(/ +$/, '');
        flush();
        out.push(h('br'));
      } else {
        buf += '\n';
      }
      i++;
      continue;
    }
    if (c === '&') {
      const e = entity(text, i);
      if (e) {
        buf += e.ch;
        i = e.end;
        continue;
      }
    }
    if ((c === '[' || (c === '!' && text[i + 1] === '[')) && !inLink) {
      const image = c === '!';
      const l = link(text, image ? i + 1 : i, ctx);
      if (l) {
        flush();
        out.push(linkNode(l, image, ctx));
        i = l.end;
        continue;
      }
    }
    if (c === '<') {
      const m = /^<([a-zA-Z][a-zA-Z0-9+.-]{1,31}:[^\s<>]*|[^\s<>@]+@[^\s<>@]+\.[a-zA-Z]{2,})>/.exec(text.slice(i, i + 2048));
      if (m) {
        const href = m[1].includes(':') ? m[1] : `mailto:${m[1]}`;
        flush();
        out.push(anchor(href, [m[1]], ctx));
        i += m[0].length;
        continue;
      }
    }
    if (c === '*' || c === '_' || c === '~') {
      const n = runLength(text, i, c);
      const e = emphasis(text, i, n, ctx, inLink, unclosed);
      if (e) {
        flush();
        out.push(e.node);
        i = e.end;
      } else {
        buf += c.repeat(n);
        i += n;
      }
      continue;
    }
    buf += c;
    i++;
  }
  flush();
  return out;
}

function runLength(text, i, c) {
  let k = i;
  while (text[k] === c) k++;
  return k - i;
}

function closingTicks(text, from, n) {
  for (let j = text.indexOf('`', from); j >= 0; j = text.indexOf('`', j)) {
    const len = runLength(text, j, '`');
    if (len === n) return j;
    j += len;
  }
  return -1;
}

function emphasis(text, i, n, ctx, inLink, unclosed) {
  const c = text[i];
  if ((c === '~' && n !== 2) || n > 3) return null;
  const after = text[i + n];
  if (!after || /\s/.test(after)) return null;
  // "_" inside a word (snake_case names, everywhere in documentation) is not emphasis.
  if (c === '_' && i > 0 && WORD.test(text[i - 1])) return null;
  const key = c + n;
  if (unclosed.has(key)) return null;
  for (let j = text.indexOf(c, i + n + 1); j >= 0; j = text.indexOf(c, j)) {
    const len = runLength(text, j, c);
    const end = j + len;
    if (len === n && !/\s/.test(text[j - 1]) && !(c === '_' && end < text.length && WORD.test(text[end]))) {
      const inner = inline(text.slice(i + n, j), ctx, inLink);
      let node;
      if (c === '~') node = h('del', {}, inner);
      else if (n === 1) node = h('em', {}, inner);
      else if (n === 2) node = h('strong', {}, inner);
      else node = h('strong', {}, h('em', {}, inner));
      return {node, end};
    }
    j = end;
  }
  unclosed.add(key);
  return null;
}

// link parses "[label](dest "title")", "[label][ref]", "[label][]" or "[ref]" at text[i] === '['.
function link(text, i, ctx) {
  let depth = 0;
  let j = i;
  for (; j < text.length; j++) {
    const c = text[j];
    if (c === '\\') j++;
    else if (c === '`') {
      const n = runLength(text, j, '`');
      const close = closingTicks(text, j + n, n);
      j = close < 0 ? j + n - 1 : close + n - 1;
    } else if (c === '[') depth++;
    else if (c === ']' && --depth === 0) break;
  }
  if (j >= text.length) return null;
  const label = text.slice(i + 1, j);
  let k = j + 1;
  if (text[k] === '(') {
    k++;
    while (text[k] === ' ' || text[k] === '\n') k++;
    let dest = '';
    if (text[k] === '<') {
      const close = text.indexOf('>', k);
      if (close < 0) return null;
      dest = text.slice(k + 1, close);
      k = close + 1;
    } else {
      let parens = 0;
      const start = k;
      for (; k < text.length; k++) {
        const c = text[k];
        if (c === '\\') k++;
        else if (c === '(') parens++;
        else if (c === ')') {
          if (parens === 0) break;
          parens--;
        } else if (/\s/.test(c)) break;
      }
      dest = text.slice(start, k);
    }
    while (text[k] === ' ' || text[k] === '\n') k++;
    const q = text[k];
    if (q === '"' || q === "'" || q === '(') {
      const close = text.indexOf(q === '(' ? ')' : q, k + 1);
      if (close < 0) return null;
      k = close + 1;
      while (text[k] === ' ' || text[k] === '\n') k++;
    }
    if (text[k] !== ')') return null;
    return {label, href: dest.replace(/\\([!-/:-@[-`{-~])/g, '$1'), end: k + 1};
  }
  if (text[k] === '[') {
    const close = text.indexOf(']', k + 1);
    if (close >= 0) {
      const ref = text.slice(k + 1, close) || label;
      const href = ctx.refs.get(refKey(ref));
      if (href !== undefined) return {label, href, end: close + 1};
    }
  }
  const href = ctx.refs.get(refKey(label));
  return href !== undefined ? {label, href, end: j + 1} : null;
}

function linkNode(l, image, ctx) {
  // Images become links to them: other sites' images are not loaded (the page's policy forbids
  // them, and they would tell those sites who reads what).
  const label = image ? ['image: ', l.label || l.href] : inline(l.label, ctx, true);
  return anchor(l.href, label, ctx);
}

// anchor links to href as the page's markdown wrote it: a section of the same page stays in the UI,
// anything else opens the original in a new tab, and an address that is not web or mail is text.
function anchor(href, children, ctx) {
  if (href.startsWith('#')) {
    let frag = href.slice(1);
    try {
      frag = decodeURIComponent(frag);
    } catch {
      // keep it as written
    }
    return ctx.fragment ? h('a', {href: ctx.fragment(frag)}, children) : h('span', {}, children);
  }
  const url = safeURL(href, ctx.base || undefined);
  if (!url) return h('span', {}, children);
  if (ctx.base && ctx.fragment) {
    const u = new URL(url);
    const b = new URL(ctx.base, url);
    if (u.hash && u.origin === b.origin && u.pathname === b.pathname && u.search === b.search) {
      return anchor(u.hash, children, ctx);
    }
  }
  return h('a', {href: url, target: '_blank', rel: 'noopener noreferrer'}, children);
}
