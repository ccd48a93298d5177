// Chat: a session with an agent. The answer streams in as the model writes it; tool calls and
// sub-agents show as status lines while they run; the finished answer is shown with its citations.
// "#/chat/ID" reopens a session, and follow-up prompts continue it.

import {h, docHref, extLink, citationLink} from './dom.js';
import {api, events} from './api.js';
import {renderMarkdown} from './markdown.js';

export const title = 'Chat';

// A stream the server closed without its done event (a reader that fell behind is dropped) is
// picked up again from the last event seen, this many times at most.
const RECONNECTS = 3;

export function mount(root, route, signal) {
  const ui = {
    agent: h('select', {id: 'agent', name: 'agent', 'aria-label': 'Agent'}),
    log: h('div', {class: 'chat-log', id: 'chat-log'}),
    prompt: h('textarea', {id: 'prompt', name: 'prompt', rows: 3, required: true, maxlength: 20000,
      placeholder: 'Ask about the documentation', 'aria-label': 'Prompt'}),
    send: h('button', {type: 'submit', id: 'send'}, 'Send'),
    cancel: h('button', {type: 'button', id: 'cancel', hidden: true}, 'Cancel'),
    status: h('p', {class: 'status', role: 'status'}),
  };
  const state = {session: route.rest[0] || '', agent: '', running: false, signal};
  const form = h('form', {class: 'chat-form', onsubmit: (e) => {
    e.preventDefault();
    submit(ui, state);
  }}, ui.prompt, h('div', {class: 'row'}, ui.send, ui.cancel));
  ui.prompt.addEventListener('keydown', (e) => {
    // Enter sends, Shift+Enter is a new line, as in most chat boxes.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  ui.cancel.addEventListener('click', () => cancel(ui, state));
  root.append(
    h('div', {class: 'row chat-head'}, h('h1', {}, 'Chat'), h('label', {for: 'agent'}, 'Agent'), ui.agent,
      h('a', {href: '#/chat', class: 'button', id: 'new-chat'}, 'New chat')),
    ui.log, ui.status, form);
  loadAgents(ui, state);
  if (state.session) reopen(ui, state);
}

async function loadAgents(ui, state) {
  try {
    const data = await api('/v1/agents', {signal: state.signal});
    const agents = (data.agents || data || []).filter((a) => a.mode !== 'subagent');
    ui.agent.replaceChildren(...agents.map((a) => h('option', {value: a.name, title: a.description || null,
      selected: a.name === 'general'}, a.name)));
    // A reopened session that loaded first has named its agent already.
    if (state.agent) ui.agent.value = state.agent;
  } catch (err) {
    if (err.name !== 'AbortError') ui.status.textContent = err.message;
  }
}

// reopen shows a stored session's conversation and, when it is still running, follows it.
async function reopen(ui, state) {
  let data;
  try {
    data = await api(`/v1/sessions/${encodeURIComponent(state.session)}`, {signal: state.signal});
  } catch (err) {
    if (err.name !== 'AbortError') ui.status.textContent = err.message;
    return;
  }
  const session = data.session || data;
  state.session = session.id || state.session;
  if (session.agent) {
    // A session keeps its agent: follow-ups go to the same one.
    state.agent = session.agent;
    ui.agent.value = session.agent;
    ui.agent.disabled = true;
  }
  const running = data.running || session.status === 'running';
  // Each prompt's answer is the last assistant text before the next prompt. The stored answer is
  // the model's text, whose [n] number the sources in the order that prompt's tool calls first
  // returned them, as the agent numbered them while it ran.
  let turn = null;
  let answer = '';
  let book = [];
  const finish = () => {
    if (!turn) return;
    const numbers = cited(answer).filter((n) => n <= book.length);
    finishTurn(turn, {answer, citations: numbers.map((n) => book[n - 1]), numbers});
  };
  for (const m of data.messages || []) {
    if (m.role === 'user') {
      finish();
      turn = newTurn(ui, m.content);
      answer = '';
      book = [];
    } else if (m.role === 'assistant' && m.content && !(m.tool_calls || []).length) {
      answer = m.content;
    } else if (m.role === 'tool') {
      for (const c of m.citations || []) {
        if (!book.some((b) => citationLink(b) === citationLink(c))) book.push(c);
      }
    }
  }
  if (running) follow(ui, state, turn || newTurn(ui, ''));
  else finish();
}

// cited lists the source numbers an answer refers to ("[1]", "[2, 3]"), in order, once each.
function cited(text) {
  const out = [];
  for (const m of text.matchAll(/\[(\d{1,6}(?:\s*,\s*\d{1,6})*)\]/g)) {
    for (const n of m[1].split(',').map((x) => parseInt(x, 10))) {
      if (n > 0 && !out.includes(n)) out.push(n);
    }
  }
  return out.sort((a, b) => a - b);
}

async function submit(ui, state) {
  const prompt = ui.prompt.value.trim();
  if (!prompt || state.running) return;
  ui.status.textContent = '';
  ui.status.classList.remove('error');
  setRunning(ui, state, true);
  const turn = newTurn(ui, prompt);
  try {
    if (state.session) {
      await followUp(state, prompt);
    } else {
      const data = await api('/v1/sessions', {method: 'POST', body: {agent: ui.agent.value, prompt}, signal: state.signal});
      const session = data.session || data;
      state.session = session.id;
      state.agent = session.agent;
      ui.agent.disabled = true;
      // The address names the session without re-rendering the view (replaceState fires no hashchange).
      history.replaceState(null, '', `#/chat/${encodeURIComponent(session.id)}`);
    }
  } catch (err) {
    setRunning(ui, state, false);
    if (err.name === 'AbortError') return;
    turn.root.remove();
    ui.status.textContent = err.message;
    ui.status.classList.add('error');
    return;
  }
  ui.prompt.value = '';
  follow(ui, state, turn);
}

// followUp continues the session. The server can still count the last run as running for a
// moment after its done event, and answers "conflict" then: a prompt sent right after an answer
// is tried again a few times, a little later each time, before that is shown.
async function followUp(state, prompt) {
  const path = `/v1/sessions/${encodeURIComponent(state.session)}/messages`;
  for (let attempt = 0; ; attempt++) {
    try {
      return await api(path, {method: 'POST', body: {prompt}, signal: state.signal});
    } catch (err) {
      if (err.kind !== 'conflict' || attempt >= 4) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
  }
}

async function cancel(ui, state) {
  if (!state.session) return;
  ui.cancel.disabled = true;
  try {
    await api(`/v1/sessions/${encodeURIComponent(state.session)}/cancel`, {method: 'POST', signal: state.signal});
  } catch (err) {
    // Already finished: the done event is on its way and says so.
    if (err.name !== 'AbortError' && err.kind !== 'conflict') ui.status.textContent = err.message;
  }
}

function setRunning(ui, state, running) {
  state.running = running;
  ui.send.disabled = running;
  ui.cancel.hidden = !running;
  ui.cancel.disabled = false;
}

// follow reads the session's events into turn until the done event.
async function follow(ui, state, turn) {
  setRunning(ui, state, true);
  const path = `/v1/sessions/${encodeURIComponent(state.session)}/events`;
  let last = 0;
  let done = false;
  const onEvent = ({id, data}) => {
    if (!data || typeof data !== 'object') return;
    if (data.seq) last = data.seq;
    else if (id) last = id;
    if (apply(turn, data)) done = true;
  };
  try {
    for (let attempt = 0; !done && attempt <= RECONNECTS; attempt++) {
      const after = last ? `?after=${encodeURIComponent(last)}` : '';
      await events(path + after, onEvent, {signal: state.signal, lastEventId: last || undefined});
    }
    if (!done) {
      ui.status.textContent = 'The event stream ended before the answer; reload to see it.';
    }
  } catch (err) {
    if (err.name !== 'AbortError') {
      ui.status.textContent = err.message;
      ui.status.classList.add('error');
    }
  } finally {
    setRunning(ui, state, false);
  }
}

function newTurn(ui, prompt) {
  const turn = {
    answer: h('div', {class: 'answer streaming'}),
    activity: h('ul', {class: 'activity'}),
    tools: new Map(),
    agents: new Map(),
  };
  turn.root = h('section', {class: 'turn'},
    prompt ? h('div', {class: 'msg user'}, prompt) : null,
    turn.activity,
    h('div', {class: 'msg assistant'}, turn.answer));
  ui.log.append(turn.root);
  return turn;
}

// apply shows one event; it returns true for the done event.
function apply(turn, e) {
  const sub = !!e.parent_run_id;
  switch (e.kind) {
    case 'text':
      // Only the session's own agent writes the answer; sub-agents report through their task.
      if (!sub && e.text) turn.answer.append(e.text);
      return false;
    case 'tool_start': {
      const who = sub && e.agent ? `${e.agent}: ` : '';
      const line = h('li', {class: 'running'}, `${who}${e.tool}`, argsSummary(e.text));
      turn.tools.set(e.tool_call_id || `${e.run_id}/${e.tool}`, line);
      turn.activity.append(line);
      return false;
    }
    case 'tool_end': {
      const line = turn.tools.get(e.tool_call_id || `${e.run_id}/${e.tool}`);
      if (line) {
        line.className = e.err ? 'failed' : 'ended';
        if (e.err) line.append(` — ${e.err}`);
      }
      return false;
    }
    case 'subagent_start': {
      const line = h('li', {class: 'running subagent'}, `sub-agent ${e.agent}: ${e.description || e.text || ''}`);
      turn.agents.set(e.run_id, line);
      turn.activity.append(line);
      return false;
    }
    case 'subagent_end': {
      const line = turn.agents.get(e.run_id);
      if (line) {
        line.className = 'ended subagent';
        if (e.text && e.text !== 'answer') line.append(` (stopped: ${e.text})`);
      }
      return false;
    }
    case 'done':
      finishTurn(turn, e);
      return true;
    default:
      return false; // step and kinds this page does not know
  }
}

function argsSummary(json) {
  if (!json) return '';
  let args;
  try {
    args = JSON.parse(json);
  } catch {
    return '';
  }
  const v = args && (args.query || args.url || args.description || args.prompt);
  return typeof v === 'string' ? ` “${v.length > 80 ? v.slice(0, 79) + '…' : v}”` : '';
}

// splitSources takes the "Sources:" list the agent appends to an answer ("[n] url#anchor" lines)
// off it, so that the page can show those sources as links instead: {body, sources: [{n, link}]}.
// A line after the list (a budget that stopped the run) stays with the body.
export function splitSources(answer) {
  const at = answer.lastIndexOf('\n\nSources:\n');
  if (at < 0) return {body: answer, sources: []};
  const lines = answer.slice(at + '\n\nSources:\n'.length).split('\n');
  const sources = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const m = /^\[(\d+)\] (\S+)$/.exec(lines[i]);
    if (!m) break;
    sources.push({n: parseInt(m[1], 10), link: m[2]});
  }
  if (sources.length === 0) return {body: answer, sources: []};
  const rest = lines.slice(i).join('\n').trim();
  return {body: answer.slice(0, at) + (rest ? '\n\n' + rest : ''), sources};
}

function finishTurn(turn, e) {
  for (const line of turn.activity.querySelectorAll('li.running')) line.className = 'ended';
  turn.answer.classList.remove('streaming');
  const {body, sources} = splitSources(typeof e.answer === 'string' ? e.answer : '');
  if (body !== '') turn.answer.replaceChildren(renderMarkdown(body));
  const citations = e.citations || [];
  // The list's numbers are those the answer's [n] use; the citations come in the list's order.
  const numberOf = (i) => {
    if (e.numbers) return e.numbers[i];
    return sources.length === citations.length ? sources[i].n : null;
  };
  const items = citations.length ?
    citations.map((c, i) => ({n: numberOf(i), c})) :
    sources.map((s) => ({n: s.n, c: null, link: s.link}));
  if (items.length) {
    turn.root.append(h('ol', {class: 'citations', 'aria-label': 'Sources'}, items.map(({n, c, link}) => {
      if (!c) return h('li', {value: n}, extLink(link, link));
      const where = c.heading && c.heading !== c.title ? `${c.title} — ${c.heading}` : c.title || c.url;
      const href = citationLink(c);
      return h('li', {value: n}, extLink(href, where), ' ', h('a', {class: 'open-doc', href: docHref(c.url, c.anchor)}, 'read here'));
    })));
  }
  const notes = [];
  if (e.status && e.status !== 'done') notes.push(e.status);
  if (['steps', 'tokens', 'time'].includes(e.stopped_by)) notes.push(`stopped by its ${e.stopped_by} budget`);
  if (e.err) notes.push(e.err);
  if (notes.length) turn.root.append(h('p', {class: 'turn-status'}, notes.join(': ')));
}
