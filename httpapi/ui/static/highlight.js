// Marking the words of a query in a snippet. The snippet stays text: it is split around the matches
// and each piece becomes a text node (a match inside <mark>), so markup in a crawled page's text is
// shown, never run — the DOM equivalent of escaping first and marking after.

import {h} from './dom.js';

const SUFFIX = /(?:ing|ed|es|s)$/;

// terms are the query's words, lower case, with a crude stem so that "indexes" also marks "index"
// and "indexing", as the search itself (which stems) would have matched them.
export function terms(query) {
  const out = new Set();
  for (const word of String(query).toLowerCase().match(/[\p{L}\p{N}_]+/gu) || []) {
    if (word.length < 2) continue;
    const stem = word.length > 4 ? word.replace(SUFFIX, '') : word;
    out.add(stem.length >= 3 ? stem : word);
  }
  return [...out].sort((a, b) => b.length - a.length);
}

function pattern(query) {
  const ts = terms(query);
  if (ts.length === 0) return null;
  const alts = ts.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  // A term matches at the start of a word and takes the rest of that word with it.
  return new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alts.join('|')})[\\p{L}\\p{N}_]*`, 'giu');
}

// highlight returns text as a DocumentFragment with the query's words in <mark>.
export function highlight(text, query) {
  const frag = document.createDocumentFragment();
  text = String(text ?? '');
  const re = pattern(query);
  let last = 0;
  if (re) {
    for (const m of text.matchAll(re)) {
      if (m.index > last) frag.append(text.slice(last, m.index));
      frag.append(h('mark', {}, m[0]));
      last = m.index + m[0].length;
    }
  }
  if (last < text.length) frag.append(text.slice(last));
  return frag;
}
