// The HTTP API on this origin (/v1), with the bearer token from the Token view when one is set.

const TOKEN_KEY = 'panther.token';

export function token() {
  try {
    return localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return ''; // storage disabled: no token, as on a server that needs none
  }
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const out = {...extra};
  const t = token();
  if (t) out.Authorization = 'Bearer ' + t;
  return out;
}

// APIError is a failed request, with the API's {"error", "kind"} when it sent one.
export class APIError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
}

async function failure(res) {
  const text = await res.text().catch(() => '');
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the text itself is the message
  }
  let message = (body && body.error) || text.trim() || res.statusText || `HTTP ${res.status}`;
  if (res.status === 401) message += ' (set an API token in the Token view)';
  return new APIError(res.status, (body && body.kind) || '', message);
}

// api sends one request and returns the decoded JSON (or the text, for other types).
export async function api(path, {method = 'GET', body, signal, accept = 'application/json'} = {}) {
  const init = {method, signal, headers: headers({Accept: accept})};
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  if ((res.headers.get('Content-Type') || '').includes('json')) return res.json();
  return res.text();
}

// A server-sent event bigger than this is a broken stream, not something to keep buffering.
const MAX_EVENT = 4 << 20;

// events follows a text/event-stream and calls onEvent({event, id, data}) for each event, data
// parsed as JSON when it is JSON. It is read with fetch rather than EventSource because
// EventSource cannot send the Authorization header; one code path, token or not. It resolves when
// the server ends the stream and rejects on errors (an AbortError when signal aborts).
export async function events(path, onEvent, {signal, lastEventId} = {}) {
  const extra = {Accept: 'text/event-stream'};
  if (lastEventId) extra['Last-Event-ID'] = String(lastEventId);
  const res = await fetch(path, {headers: headers(extra), signal, cache: 'no-store'});
  if (!res.ok) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let event = '';
  let id = '';
  let data = [];
  let size = 0;
  const dispatch = () => {
    if (data.length > 0) {
      const text = data.join('\n');
      let value = text;
      try {
        value = JSON.parse(text);
      } catch {
        // plain text data
      }
      onEvent({event: event || 'message', id, data: value});
    }
    event = '';
    data = [];
    size = 0;
  };
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += value;
    let start = 0;
    let nl;
    while ((nl = buf.indexOf('\n', start)) >= 0) {
      const line = buf.slice(start, nl).replace(/\r$/, '');
      start = nl + 1;
      if (line === '') {
        dispatch();
        continue;
      }
      if (line.startsWith(':')) continue; // a comment: the server's keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') {
        data.push(val);
        size += val.length;
      } else if (field === 'event') event = val;
      else if (field === 'id') id = val;
    }
    buf = buf.slice(start);
    if (buf.length + size > MAX_EVENT) {
      reader.cancel();
      throw new Error(`${path}: an event longer than ${MAX_EVENT} bytes`);
    }
  }
  // An event the stream ended in the middle of is dropped, as EventSource does.
}
