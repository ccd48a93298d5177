// The API token, kept in this browser's localStorage and sent as "Authorization: Bearer".

import {h} from './dom.js';
import {api, token, setToken} from './api.js';

export const title = 'Token';

export function mount(root, _route, signal) {
  const input = h('input', {type: 'password', id: 'token', name: 'token', autocomplete: 'off', value: token(),
    placeholder: 'none: the server needs no token'});
  const status = h('p', {class: 'status', role: 'status'});
  const check = async () => {
    status.textContent = 'Checking…';
    try {
      await api('/v1/status', {signal});
      status.textContent = token() ? 'The server accepts this token.' : 'The server answers without a token.';
    } catch (err) {
      if (err.name !== 'AbortError') status.textContent = err.message;
    }
  };
  const form = h('form', {class: 'row', onsubmit: (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    check();
  }},
  h('label', {for: 'token'}, 'API token'), input, h('button', {type: 'submit'}, 'Save'),
  h('button', {type: 'button', onclick: () => {
    input.value = '';
    setToken('');
    check();
  }}, 'Clear'));
  root.append(h('h1', {}, 'API token'),
    h('p', {class: 'hint'}, 'A server with tokens configured answers only requests that carry one. It is stored in this browser only.'),
    form, status);
}
