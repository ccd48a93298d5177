// Sources: what the knowledge base crawls, adding one, and crawls with their live progress.

import {h, add, extLink, when} from './dom.js';
import {api, events} from './api.js';

export const title = 'Sources';

export function mount(root, _route, signal) {
  const list = h('ul', {class: 'sources', id: 'sources'});
  const crawls = h('ul', {class: 'crawls', id: 'crawls'});
  const status = h('p', {class: 'status', role: 'status'});
  const url = h('input', {type: 'url', id: 'source-url', name: 'url', required: true, maxlength: 2048,
    placeholder: 'https://docs.example.org/', 'aria-label': 'Source URL'});
  const crawlNow = h('input', {type: 'checkbox', id: 'crawl-now', name: 'crawl', checked: true});
  const ctx = {list, crawls, status, signal, following: new Map(), attempts: new Map()};
  const form = h('form', {class: 'row add-source', onsubmit: async (e) => {
    e.preventDefault();
    status.textContent = 'Adding…';
    status.classList.remove('error');
    try {
      const data = await api('/v1/sources', {method: 'POST', body: {url: url.value.trim(), crawl: crawlNow.checked}, signal});
      url.value = '';
      status.textContent = 'Added.';
      const job = data && (data.job || data.crawl);
      if (job) follow(ctx, job);
      refresh(ctx);
    } catch (err) {
      if (err.name === 'AbortError') return;
      status.textContent = err.message;
      status.classList.add('error');
    }
  }}, url, h('label', {class: 'check'}, crawlNow, ' crawl now'), h('button', {type: 'submit'}, 'Add'));
  root.append(h('h1', {}, 'Sources'), form, status, list, h('h2', {}, 'Crawls'), crawls);
  refresh(ctx);
}

async function refresh(ctx) {
  let sources;
  let jobs;
  try {
    [sources, jobs] = await Promise.all([api('/v1/sources', {signal: ctx.signal}), api('/v1/crawls', {signal: ctx.signal})]);
  } catch (err) {
    if (err.name === 'AbortError') return;
    ctx.status.textContent = err.message;
    ctx.status.classList.add('error');
    return;
  }
  sources = listOf(sources, 'sources');
  ctx.list.replaceChildren(...(sources.length ? sources.map((s) => sourceItem(ctx, s)) :
    [h('li', {class: 'empty'}, 'No sources yet: add the address of a documentation site.')]));
  for (const job of listOf(jobs, 'crawls', 'jobs')) {
    if (!ctx.following.has(job.id)) {
      if (isActive(job)) follow(ctx, job);
      else showJob(ctx, job);
    }
  }
}

function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  for (const k of keys) if (data && Array.isArray(data[k])) return data[k];
  return [];
}

// Sources are counted by listing their pages, up to this many.
const COUNT_LIMIT = 1000;

function sourceItem(ctx, s) {
  const pages = h('span', {class: 'pages'});
  const last = when(s.last_crawl_at);
  const meta = h('span', {class: 'meta'}, pages, last ? `last crawled ${last}` : 'never crawled');
  const showPages = (n, more) => {
    pages.textContent = `${n}${more ? '+' : ''} page${n === 1 && !more ? '' : 's'} · `;
  };
  if (typeof s.pages === 'number') {
    showPages(s.pages, false);
  } else {
    api(`/v1/documents?source=${encodeURIComponent(s.id)}&limit=${COUNT_LIMIT}`, {signal: ctx.signal})
      .then((d) => {
        const n = listOf(d, 'documents').length;
        showPages(n, n >= COUNT_LIMIT);
      })
      .catch(() => {}); // the count is a nicety; the list stands without it
  }
  const button = h('button', {type: 'button', class: 'crawl', onclick: async () => {
    button.disabled = true;
    try {
      const data = await api(`/v1/sources/${encodeURIComponent(s.id)}/crawl`, {method: 'POST', body: {}, signal: ctx.signal});
      follow(ctx, (data && (data.job || data.crawl)) || data);
    } catch (err) {
      if (err.name === 'AbortError') return;
      ctx.status.textContent = err.message;
      ctx.status.classList.add('error');
    } finally {
      button.disabled = false;
    }
  }}, 'Crawl');
  return h('li', {class: 'source', 'data-source': s.id}, h('span', {class: 'url'}, extLink(s.url, s.url)), meta, button);
}

const ENDED = ['done', 'failed', 'cancelled'];

function isActive(job) {
  return !ENDED.includes(job.state || job.status);
}

// showJob puts a crawl's line in the list, or updates it.
function showJob(ctx, job) {
  let line = ctx.crawls.querySelector(`[data-job="${CSS.escape(String(job.id))}"]`);
  if (!line) {
    line = h('li', {'data-job': job.id});
    ctx.crawls.prepend(line);
  }
  const state = job.state || job.status || '';
  line.className = `crawl-job ${state}`;
  line.replaceChildren();
  add(line, [h('span', {class: 'url'}, job.seed || `crawl ${job.id}`), ' ',
    h('span', {class: 'state'}, state), ' ', h('span', {class: 'counts'}, counts(job)),
    job.error ? h('span', {class: 'error'}, job.error) : null,
    job.warning ? h('span', {class: 'warning'}, job.warning) : null]);
}

// counts says how far a crawl got: its progress while it runs, its summary once it has ended.
function counts(job) {
  const parts = [];
  const add = (label, n) => {
    if (n) parts.push(`${label} ${n}`);
  };
  const sum = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);
  if (job.summary) {
    const s = job.summary;
    add('fetched', s.fetched);
    add('new', s.new);
    add('changed', s.changed);
    add('unchanged', s.unchanged);
    add('gone', s.gone);
    add('skipped', sum(s.skipped));
    add('failed', sum(s.failed));
    if (s.truncated) parts.push('stopped at the page limit');
  } else if (job.progress) {
    const p = job.progress;
    add('done', p.done);
    add('queued', p.queued);
    add('skipped', p.skipped);
    add('failed', p.failed);
    if (p.pages_per_sec) parts.push(`${p.pages_per_sec.toFixed(1)} pages/s`);
  }
  return parts.join(' · ');
}

// follow shows a crawl's progress as its events arrive, and the source list once it ends.
async function follow(ctx, job) {
  if (!job || job.id == null || ctx.following.has(job.id)) return;
  // A stream that keeps closing on a crawl still running is not reopened forever.
  const attempts = (ctx.attempts.get(job.id) || 0) + 1;
  ctx.attempts.set(job.id, attempts);
  if (attempts > 3) {
    showJob(ctx, job);
    return;
  }
  ctx.following.set(job.id, true);
  showJob(ctx, job);
  let current = job;
  try {
    await events(`/v1/crawls/${encodeURIComponent(job.id)}/events`, ({data}) => {
      if (!data || typeof data !== 'object') return;
      current = {...current, ...(data.job || data)};
      current.id = job.id;
      showJob(ctx, current);
    }, {signal: ctx.signal});
  } catch (err) {
    if (err.name === 'AbortError') return;
    ctx.status.textContent = err.message;
  } finally {
    ctx.following.delete(job.id);
  }
  if (!ctx.signal.aborted) refresh(ctx);
}
