/*
 * app.js - the changelogd browser UI. Plain modern JavaScript, no build step.
 *
 * One WebSocket to wss://<host>/ws/, signed in by the session cookie that
 * POST /session gave for a token once per browser. It asks for a snapshot
 * (getChangelogEntries / getEntry, each answered with the log position "at")
 * and subscribes since that position, so the snapshot and the live stream
 * join exactly. Every push carries the new state of the entry it touched;
 * the page swaps that one entry in place. On disconnect it reconnects with
 * backoff and resumes from the last seq it saw; if the server says the
 * history was not recovered (another epoch), it queries everything again.
 *
 * All user text goes into the DOM through textContent: never innerHTML.
 */
'use strict';

const TRANSITIONS = {
  open: ['resolved', 'cancelled'],
  resolved: ['reopened'],
  cancelled: ['reopened'],
  reopened: ['resolved', 'cancelled'],
};
const VERB = { resolved: 'Resolve', cancelled: 'Cancel', reopened: 'Reopen' };
const PAGE = 50;

const S = {
  token: null, ws: null, nextId: 1, pending: new Map(),
  epoch: null, lastSeq: 0, me: null, tokenId: null,
  entries: new Map(), cursor: null, loadingMore: false,
  view: 'list', entryId: null, entry: null,
  retry: 0, retryTimer: null, everOpened: false, stopped: false,
};

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') n.className = v;
    else if (k === 'text') n.textContent = v;
    else if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else n.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids) if (c !== null && c !== undefined) n.append(c);
  return n;
}

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

/* ---- messages to the user ------------------------------------------- */

let errTimer = null;
function showError(msg) {
  const box = $('#error');
  box.textContent = msg;
  box.hidden = false;
  clearTimeout(errTimer);
  errTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

function describe(err) {
  if (err && err.code && err.message) return err.message;
  if (err && err.message) return err.message;
  return 'Something went wrong.';
}

function setConn(state, text) {
  const c = $('#conn');
  c.className = 'conn conn-' + state;
  c.textContent = text;
}

/* ---- connection ----------------------------------------------------- */

function wsURL() {
  // no token in the URL: the session cookie (HttpOnly) signs the handshake in
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws/`;
}

// The browser session (docs/http-api.md): POST /session trades a token for
// the clg_session cookie once per browser; X-Requested-With is the header
// a cross-site form cannot send.
function session(method, body) {
  return fetch('/session', { method, credentials: 'same-origin', cache: 'no-store',
    headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'changelog-web' },
    body: body ? JSON.stringify(body) : undefined });
}

function signedIn() {
  return fetch('/api/v1/queries/whoami', { credentials: 'same-origin', cache: 'no-store',
    headers: { 'X-Requested-With': 'changelog-web' } }).then((r) => r.ok, () => false);
}

function connect() {
  clearTimeout(S.retryTimer);
  if (!S.token || S.stopped) return;
  setConn('wait', S.everOpened ? 'reconnecting…' : 'connecting…');
  let opened = false;
  const ws = new WebSocket(wsURL());
  S.ws = ws;
  ws.onopen = () => {
    opened = true;
    S.everOpened = true;
    S.retry = 0;
    setConn('on', 'live');
    start().catch((e) => showError(describe(e)));
  };
  ws.onmessage = (m) => onMessage(m.data);
  ws.onclose = (ev) => {
    if (S.ws !== ws) return;
    S.ws = null;
    for (const p of S.pending.values()) p.reject({ message: 'connection lost' });
    S.pending.clear();
    if (S.stopped) return;
    setConn('off', 'offline');
    if (ev.reason) showError(`Disconnected: ${ev.reason}`);
    if (!opened) {
      // The handshake failed: is the server down, or was the token refused?
      fetch('/healthz', { cache: 'no-store' }).then((r) => {
        if (r.ok) {
          signOut('Signed out: the session ended or its token was revoked. Sign in again.');
        } else {
          scheduleReconnect();
        }
      }).catch(() => scheduleReconnect());
      return;
    }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  const base = Math.min(10000, 500 * 2 ** S.retry);
  S.retry = Math.min(S.retry + 1, 6);
  const delay = base / 2 + Math.random() * base / 2;
  setConn('off', `offline, retrying in ${Math.ceil(delay / 1000)}s`);
  S.retryTimer = setTimeout(connect, delay);
}

function send(obj) {
  return new Promise((resolve, reject) => {
    if (!S.ws || S.ws.readyState !== WebSocket.OPEN) {
      reject({ message: 'Not connected; try again in a moment.' });
      return;
    }
    const id = S.nextId++;
    S.pending.set(id, { resolve, reject });
    S.ws.send(JSON.stringify({ id, ...obj }));
  });
}

const query = (name, params) => send({ op: 'query', name, params: params || {} });

function command(op, params) {
  const cmd_id = (crypto.randomUUID ? crypto.randomUUID()
    : String(Date.now()) + Math.random().toString(16).slice(2));
  return send({ op, params, cmd_id });
}

function onMessage(text) {
  let msg;
  try { msg = JSON.parse(text); } catch (e) { return; }
  if (msg.op === 'event') { onPush(msg); return; }
  if (msg.op === 'events') { for (const p of msg.events || []) onPush(p); return; }
  const p = msg.id !== undefined ? S.pending.get(msg.id) : null;
  if (!p) {
    if (msg.ok === false && msg.error) showError(describe(msg.error));
    return;
  }
  S.pending.delete(msg.id);
  if (msg.ok) p.resolve(msg); else p.reject(msg.error || { message: 'request failed' });
}

/* After (re)connecting: who am I, then resume or take a fresh snapshot. */
async function start() {
  const who = await query('whoami');
  S.me = who.result.user;
  S.tokenId = who.token;
  $('#me').textContent = `${S.me.name} (${S.me.role})`;
  if (S.epoch !== null) {
    const sub = await send({ op: 'subscribe', since: S.lastSeq, epoch: S.epoch });
    if (sub.recovered) return;            // the missed events are on their way
  }
  await reload();
}

/* A fresh snapshot of what is on screen, then live from its position. */
async function reload() {
  let at;
  if (S.view === 'entry') {
    at = await loadEntry(S.entryId);
  } else {
    at = await loadList(false);
  }
  const sub = await send({ op: 'subscribe', since: at.at, epoch: at.epoch });
  S.epoch = sub.epoch;
  S.lastSeq = Math.max(at.at, sub.recovered ? at.at : sub.head);
}

/* ---- list ------------------------------------------------------------ */

function filters() {
  const f = new FormData($('#filters'));
  const p = {};
  for (const k of ['status', 'kind', 'q']) {
    const v = String(f.get(k) || '').trim();
    if (v) p[k] = v;
  }
  return p;
}

function matches(e) {
  const f = filters();
  if (f.status && e.status !== f.status) return false;
  if (f.kind && e.kind !== f.kind) return false;
  if (f.q) {
    const q = f.q.toLowerCase();
    if (!e.title.toLowerCase().includes(q) && !(e.body || '').toLowerCase().includes(q)) return false;
  }
  return true;
}

async function loadList(more) {
  const params = { ...filters(), limit: PAGE };
  if (more && S.cursor) params.cursor = S.cursor;
  const r = await query('getChangelogEntries', params);
  const ul = $('#entries');
  if (!more) { ul.replaceChildren(); S.entries.clear(); }
  for (const e of r.result.entries) {
    S.entries.set(e.id, e);
    ul.append(entryItem(e));
  }
  S.cursor = r.result.next_cursor;
  $('#more').hidden = !S.cursor;
  $('#empty').hidden = S.entries.size > 0;
  if (S.epoch === null) S.epoch = r.epoch;
  return r;
}

function badges(e) {
  return [
    el('span', { class: `badge st-${e.status}`, text: e.status }),
    el('span', { class: 'badge kind', text: e.kind }),
  ];
}

function entryItem(e) {
  const n = el('li', { class: 'entry', 'data-id': e.id },
    ...badges(e),
    el('a', { class: 'title', href: `#/entry/${e.id}`, text: e.title }),
    el('div', { class: 'meta',
      text: `#${e.id} by ${e.author} · ${e.comments} comment${e.comments === 1 ? '' : 's'}` +
            ` · last activity ${when(e.last_activity)}` }));
  return n;
}

function flash(node) {
  node.classList.add('flash');
  setTimeout(() => node.classList.remove('flash'), 1200);
}

/* ---- one entry ------------------------------------------------------- */

async function loadEntry(id) {
  const r = await query('getEntry', { entry: id });
  S.entry = r.result.entry;
  renderEntry();
  const ul = $('#comments');
  ul.replaceChildren();
  for (const c of r.result.comments) ul.append(commentNode(c));
  if (S.epoch === null) S.epoch = r.epoch;
  return r;
}

function canManage(e) {
  return S.me && (S.me.role === 'admin' || S.me.id === e.author_id);
}

function renderEntry() {
  const e = S.entry;
  const art = $('#entry');
  const kids = [
    el('div', {}, ...badges(e)),
    el('h2', { text: e.title }),
    el('div', { class: 'meta', text: `#${e.id} by ${e.author} · created ${when(e.created)}` +
      ` · updated ${when(e.updated)} · version ${e.version}` }),
    el('p', { class: 'body', text: e.body || '' }),
  ];
  if (canManage(e)) {
    const actions = el('div', { class: 'actions' });
    for (const to of TRANSITIONS[e.status] || []) {
      actions.append(el('button', { type: 'button', 'data-status': to, text: VERB[to],
        onclick: () => setStatus(e, to) }));
    }
    actions.append(el('button', { type: 'button', class: 'ghost', text: 'Edit',
      onclick: () => editForm(art, e) }));
    kids.push(actions);
  }
  const hist = e.status_history || [];
  if (hist.length) {
    kids.push(el('details', {}, el('summary', { text: `Status history (${hist.length})` }),
      el('ul', {}, ...hist.map((h) => el('li', { class: 'meta',
        text: `${when(h.at)}: ${h.by} set ${h.to} (was ${h.from})` })))));
  }
  art.replaceChildren(...kids);
}

function editForm(art, e) {
  const form = el('form', { class: 'card' },
    el('label', { text: 'Title ' }, el('input', { name: 'title', value: e.title, maxlength: 300, required: true })),
    el('label', { text: 'Kind ' }, el('select', { name: 'kind' },
      ...['fix', 'change', 'feature'].map((k) => el('option', { value: k, selected: k === e.kind, text: k })))),
    el('label', { text: 'Details ' }, el('textarea', { name: 'body', rows: 5 })),
    el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Save' }),
      el('button', { type: 'button', class: 'ghost', text: 'Cancel', onclick: () => renderEntry() })));
  form.querySelector('textarea').value = e.body || '';
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const params = { entry: e.id, expected_version: e.version };
    for (const k of ['title', 'kind', 'body']) {
      if (String(f.get(k)) !== String(e[k] || '')) params[k] = String(f.get(k));
    }
    if (Object.keys(params).length === 2) { renderEntry(); return; }
    try { await command('editEntry', params); } catch (err) { showError(describe(err)); }
  });
  art.replaceChildren(form);
}

async function setStatus(e, to) {
  try {
    await command('setStatus', { entry: e.id, status: to, expected_version: e.version });
  } catch (err) {
    showError(describe(err));
  }
}

function commentNode(c) {
  const replies = el('ul', { class: 'thread' });
  for (const r of c.replies || []) replies.append(commentNode(r));
  const li = el('li', { class: 'comment', 'data-cid': c.id },
    el('div', { class: 'cbody' },
      el('div', { class: 'meta', text: `${c.author} · ${when(c.created)}` }),
      el('div', { text: c.body })),
    el('button', { type: 'button', class: 'ghost reply', text: 'Reply',
      onclick: (ev) => replyForm(li, c, ev.currentTarget) }),
    replies);
  return li;
}

function replyForm(li, c, button) {
  if (li.querySelector(':scope > form')) return;
  const form = el('form', { class: 'reply-form' },
    el('textarea', { name: 'body', rows: 2, required: true, placeholder: `Reply to ${c.author}` }),
    el('button', { type: 'submit', text: 'Reply' }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = form.querySelector('textarea').value;
    try {
      await command('addComment', { entry: c.entry, parent: c.id, body });
      form.remove();
    } catch (err) { showError(describe(err)); }
  });
  button.after(form);
  form.querySelector('textarea').focus();
}

/* ---- live pushes ----------------------------------------------------- */

function onPush(p) {
  if (typeof p.seq === 'number') {
    if (p.seq <= S.lastSeq) return;       // already reflected
    S.lastSeq = p.seq;
  }
  const e = p.entry;
  if (!e) return;
  // the list
  const old = document.querySelector(`#entries li[data-id="${e.id}"]`);
  if (old) {
    if (matches(e)) {
      const n = entryItem(e);
      old.replaceWith(n);
      flash(n);
    } else {
      old.remove();
    }
    S.entries.set(e.id, e);
  } else if (p.event && p.event.type === 'entry.created' && matches(e)) {
    const n = entryItem(e);
    $('#entries').prepend(n);
    S.entries.set(e.id, e);
    $('#empty').hidden = true;
    flash(n);
  }
  // the open entry
  if (S.view === 'entry' && S.entry && e.id === S.entry.id) {
    const hist = S.entry.status_history || [];
    if (p.event && p.event.type === 'entry.status_set') {
      hist.push({ seq: p.seq, from: p.event.data.from, to: p.event.data.to,
        by: p.event.actor_name || authorName(p), by_id: p.event.actor, at: p.event.ts });
    }
    const editing = document.querySelector('#entry form');
    S.entry = { ...e, status_history: hist };
    if (!editing || p.event.type !== 'comment.added') renderEntry();
    if (p.comment) addComment(p.comment);
  }
}

function authorName(p) {
  return p.user ? p.user.name : `user ${p.event.actor}`;
}

function addComment(c) {
  if (document.querySelector(`#comments li[data-cid="${c.id}"]`)) return;
  const n = commentNode(c);
  let parentList = $('#comments');
  if (c.parent) {
    const parent = document.querySelector(`#comments li[data-cid="${c.parent}"] > ul.thread`);
    if (parent) parentList = parent;
  }
  parentList.append(n);
  flash(n.querySelector('.cbody'));
}

/* ---- routing, sign-in ------------------------------------------------ */

function route() {
  const m = location.hash.match(/^#\/entry\/(\d+)$/);
  if (m) {
    S.view = 'entry';
    S.entryId = Number(m[1]);
    $('#list-view').hidden = true;
    $('#entry-view').hidden = false;
  } else {
    S.view = 'list';
    $('#list-view').hidden = false;
    $('#entry-view').hidden = true;
  }
  if (S.ws && S.ws.readyState === WebSocket.OPEN) {
    const load = S.view === 'entry' ? loadEntry(S.entryId) : loadList(false);
    load.catch((err) => showError(describe(err)));
  }
}

async function signIn(token) {
  if (token) {
    let r = null;
    try { r = await session('POST', { token }); } catch (e) { r = null; }
    if (!r || !r.ok) {
      signOut(r && r.status === 401 ? 'The server refused this token. Ask an admin for a new one.'
        : 'Could not sign in; try again.');
      return;
    }
  }
  S.token = true;   // signed in: the cookie holds the session
  S.stopped = false;
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#signout').hidden = false;
  connect();
}

function signOut(message, end) {
  if (end) session('DELETE').catch(() => {});
  S.stopped = true;
  S.token = null;
  clearTimeout(S.retryTimer);
  if (S.ws) S.ws.close(1000, 'signed out');
  S.ws = null;
  S.epoch = null; S.lastSeq = 0; S.everOpened = false;
  $('#me').textContent = '';
  $('#app').hidden = true;
  $('#signout').hidden = true;
  $('#signin').hidden = false;
  setConn('off', 'signed out');
  if (message) showError(message);
}

function init() {
  // An invite link carries the token in the fragment: #token=clg_…; it is
  // traded for a session and replaced in the address bar and history at once
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  const invite = m ? decodeURIComponent(m[1]) : null;
  if (m) history.replaceState(null, '', location.pathname + location.search + '#/');
  $('#signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const t = $('#token').value.trim();
    $('#token').value = '';
    if (t) signIn(t);
  });
  $('#signout').addEventListener('click', () => signOut(null, true));
  $('#new-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const f = new FormData(form);
    try {
      await command('createEntry', { title: String(f.get('title')), kind: String(f.get('kind')),
        body: String(f.get('body') || '') });
      form.reset();
      $('#new-entry').open = false;
    } catch (err) { showError(describe(err)); }
  });
  $('#comment-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const form = ev.currentTarget;
    const body = form.querySelector('textarea').value;
    try {
      await command('addComment', { entry: S.entryId, body });
      form.reset();
    } catch (err) { showError(describe(err)); }
  });
  let t = null;
  $('#filters').addEventListener('input', () => {
    clearTimeout(t);
    t = setTimeout(() => loadList(false).catch((err) => showError(describe(err))), 250);
  });
  $('#more').addEventListener('click', () => loadList(true).catch((err) => showError(describe(err))));
  window.addEventListener('hashchange', route);
  route();
  if (invite) signIn(invite);
  else signedIn().then((yes) => (yes ? signIn(null) : signOut()));
}

init();
