// Search: the query box, the mode, and the hits with their citations.

import {h, docHref, extLink, citationLink, when} from './dom.js';
import {api} from './api.js';
import {highlight} from './highlight.js';

export const title = 'Search';

const MODES = [['', 'default'], ['hybrid', 'hybrid'], ['lexical', 'words'], ['vector', 'meaning']];

export function mount(root, route, signal) {
  const q = route.params.get('q') || '';
  const mode = route.params.get('mode') || '';
  const input = h('input', {type: 'search', id: 'q', name: 'q', value: q, required: true, maxlength: 1000,
    placeholder: 'Search the documentation', 'aria-label': 'Query', autocomplete: 'off'});
  const select = h('select', {id: 'mode', name: 'mode', 'aria-label': 'Search mode'},
    MODES.map(([value, label]) => h('option', {value, selected: value === mode}, label)));
  const status = h('p', {class: 'status', role: 'status'});
  const results = h('ol', {class: 'hits', id: 'hits'});
  const form = h('form', {class: 'search', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    const p = new URLSearchParams({q: input.value.trim()});
    if (select.value) p.set('mode', select.value);
    const next = '#/search?' + p.toString();
    // The address is the state: setting it re-renders through the router (and so lands in history).
    if (location.hash === next) run(q, mode, status, results, signal);
    else location.hash = next;
  }}, input, select, h('button', {type: 'submit'}, 'Search'));
  root.append(h('h1', {class: 'visually-hidden'}, 'Search'), form, status, results);
  if (q) run(q, mode, status, results, signal);
  else input.focus();
}

async function run(q, mode, status, results, signal) {
  status.textContent = 'Searching…';
  results.replaceChildren();
  const p = new URLSearchParams({q});
  if (mode) p.set('mode', mode);
  let data;
  try {
    data = await api('/v1/search?' + p.toString(), {signal});
  } catch (err) {
    if (err.name === 'AbortError') return;
    status.textContent = err.message;
    status.classList.add('error');
    return;
  }
  const hits = data.hits || [];
  status.textContent = hits.length === 0 ? `No passages match “${q}”.` :
    `${hits.length} passage${hits.length === 1 ? '' : 's'}${data.mode ? ` (${data.mode})` : ''}`;
  results.replaceChildren(...hits.map((hit) => hitItem(hit, q)));
}

function hitItem(hit, q) {
  const where = hit.heading && hit.heading !== hit.title ? `${hit.title} — ${hit.heading}` : hit.title || hit.url;
  const link = citationLink(hit);
  const meta = [`score ${Number(hit.score || 0).toFixed(2)}`];
  if (hit.found) meta.push(`found by ${hit.found}`);
  const fetched = when(hit.fetched_at);
  if (fetched) meta.push(`fetched ${fetched}`);
  return h('li', {class: 'hit'},
    h('a', {class: 'hit-title', href: docHref(hit.url, hit.anchor)}, where),
    h('p', {class: 'snippet'}, highlight(hit.snippet, q)),
    h('p', {class: 'cite'}, extLink(link, link)),
    h('p', {class: 'meta'}, meta.join(' · ')));
}
