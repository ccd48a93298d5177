// Building the page from nodes, never from HTML strings: text from the server (snippets, documents,
// answers) always ends up in text nodes and attribute values, where it cannot become markup.

// h makes an element: h('a', {href, class: 'x', onclick: fn}, 'text', child, [more children]).
// Attributes that are null, undefined or false are left out; on* keys add event listeners.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  add(el, children);
  return el;
}

// add appends children: nodes as they are, strings and numbers as text, arrays flattened, nulls skipped.
export function add(parent, children) {
  for (const child of [children].flat(Infinity)) {
    if (child == null || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

// safeURL resolves href against base and returns it only when it is a web or mail address: a
// javascript:, data: or other scheme from a crawled page must never become a live link.
export function safeURL(href, base) {
  if (typeof href !== 'string' || href.trim() === '') return null;
  let u;
  try {
    u = base ? new URL(href, base) : new URL(href);
  } catch {
    return null;
  }
  return ['http:', 'https:', 'mailto:'].includes(u.protocol) ? u.href : null;
}

// extLink is a link that leaves the UI: a new tab, and no referrer or opener handed to the target.
export function extLink(href, ...children) {
  const url = safeURL(href);
  if (!url) return h('span', {}, ...children);
  return h('a', {href: url, target: '_blank', rel: 'noopener noreferrer'}, ...children);
}

// docHref is the UI's address of a stored page, opened at one of its sections when anchor is set.
export function docHref(url, anchor) {
  const p = new URLSearchParams({url});
  if (anchor) p.set('anchor', anchor);
  return '#/doc?' + p.toString();
}

// citationLink is the address a citation points at: url#anchor, or the page alone.
export function citationLink(c) {
  return c.anchor ? `${c.url}#${c.anchor}` : c.url;
}

// when formats a timestamp from the API for people, or '' when it is missing or zero.
export function when(ts) {
  if (!ts || ts.startsWith('0001-')) return '';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleString();
}
