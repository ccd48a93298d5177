// Document view: a stored page rendered from its markdown, scrolled to the section a citation names.

import {h, docHref, extLink, when} from './dom.js';
import {api} from './api.js';
import {renderMarkdown} from './markdown.js';

export const title = 'Document';

export function mount(root, route, signal) {
  const url = route.params.get('url') || '';
  const anchor = route.params.get('anchor') || '';
  const status = h('p', {class: 'status', role: 'status'}, 'Loading…');
  root.append(status);
  if (!url) {
    status.textContent = 'No document named: the address needs ?url=.';
    return;
  }
  load(url, anchor, signal).then(({doc, section}) => {
    document.title = `${doc.title || url} · panther`;
    const body = h('article', {class: 'markdown', id: 'doc'},
      renderMarkdown(doc.markdown, {base: doc.url || url, fragment: (frag) => docHref(url, frag)}));
    const original = anchor ? `${url}#${anchor}` : url;
    const fetched = when(doc.fetched_at);
    status.replaceWith(h('header', {class: 'doc-meta'},
      h('p', {class: 'cite'}, 'Source: ', extLink(original, original)),
      fetched ? h('p', {class: 'meta'}, `fetched ${fetched}${doc.status && doc.status !== 'current' ? ` · ${doc.status}` : ''}`) : null),
    body);
    if (anchor) {
      const target = findSection(body, anchor, doc, section);
      if (target) {
        target.id = anchor;
        target.classList.add('target');
        target.scrollIntoView({block: 'start'});
      }
    }
  }).catch((err) => {
    if (err.name === 'AbortError') return;
    status.classList.add('error');
    status.replaceChildren(err.message, ' ', extLink(url, 'Open the original page'));
  });
}

// The whole page, and, for a section, that section alone: the stored markdown carries no anchors,
// but the section's own first heading finds it in the page.
async function load(url, anchor, signal) {
  const p = new URLSearchParams({url});
  const whole = api('/v1/document?' + p.toString(), {signal});
  let part = null;
  if (anchor) {
    p.set('anchor', anchor);
    part = api('/v1/document?' + p.toString(), {signal}).catch((err) => {
      if (err.name === 'AbortError') throw err;
      return null; // an unknown section: show the page from its top
    });
  }
  const [d, s] = await Promise.all([whole, part]);
  return {doc: unwrap(d), section: s && unwrap(s)};
}

function unwrap(v) {
  return (v && v.document) || v || {};
}

const HEADINGS = 'h1, h2, h3, h4, h5, h6';

function findSection(body, anchor, doc, section) {
  for (const el of body.querySelectorAll(HEADINGS)) {
    if (el.id === anchor) return el;
  }
  if (Array.isArray(doc.sections)) {
    // A document that lists its sections with their anchors names the heading directly.
    const want = doc.sections.find((s) => s.anchor === anchor);
    if (want && want.heading) {
      const text = Array.isArray(want.heading) ? want.heading[want.heading.length - 1] : want.heading;
      const el = matchHeading(body, text, null);
      if (el) return el;
    }
  }
  if (!section || !section.markdown) return null;
  const first = renderMarkdown(section.markdown).querySelector(HEADINGS);
  return first ? matchHeading(body, first.textContent, first.tagName) : null;
}

function matchHeading(body, text, tag) {
  const norm = (s) => s.replace(/\s+/g, ' ').trim();
  const want = norm(text);
  for (const el of body.querySelectorAll(HEADINGS)) {
    if ((!tag || el.tagName === tag) && norm(el.textContent) === want) return el;
  }
  return null;
}
