// The router: the part of the address after "#" names the view ("#/search?q=vacuum",
// "#/doc?url=...&anchor=...", "#/sources", "#/chat", "#/chat/SESSION", "#/settings"), so that
// views can be bookmarked and the back button works, with nothing for the server to route.

import {h} from './dom.js';
import * as search from './search.js';
import * as doc from './doc.js';
import * as sources from './sources.js';
import * as chat from './chat.js';
import * as settings from './settings.js';

const views = {search, doc, sources, chat, settings};

// route reads location.hash: {name, rest: [path parts after the name], params}.
export function route() {
  const raw = location.hash.replace(/^#\/?/, '') || 'search';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const parts = path.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return {name: parts[0] || 'search', rest: parts.slice(1), params: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1))};
}

// Each view gets a signal that aborts when the user leaves it, which ends its requests and streams.
let leaving = null;

function render() {
  const r = route();
  const view = views[r.name];
  if (leaving) leaving.abort();
  leaving = new AbortController();
  for (const a of document.querySelectorAll('nav a[data-view]')) {
    const current = a.dataset.view === r.name || (r.name === 'doc' && a.dataset.view === 'search');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('view');
  main.replaceChildren();
  if (!view) {
    main.append(h('p', {class: 'error'}, `There is no view "${r.name}". `, h('a', {href: '#/search'}, 'Search')));
    return;
  }
  document.title = `${view.title} · panther`;
  view.mount(main, r, leaving.signal);
}

window.addEventListener('hashchange', render);
render();
