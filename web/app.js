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
 * Names of users: pushes of entry events carry only the actor's id, so the
 * page keeps a cache of every user (getUsers after each connect), kept up
 * to date by the "user" member of user.* and token.* pushes.
 *
 * All user text goes into the DOM through textContent, or as the DOM nodes
 * web/md.js builds for the Markdown subset: never innerHTML.
 *
 * Presence, unread marks and notifications (docs/protocol.md "Presence",
 * "Read marks"): the page joins presence before it subscribes (hidden if
 * this browser said so), keeps the viewer's unread entries from getUnread
 * plus the pushes, marks an entry read when it is opened, and, if this
 * browser opted in, shows a Notification for others' comments on the
 * viewer's entries, replies to the viewer's comments and status changes
 * on entries the viewer took part in.
 */
'use strict';

const TRANSITIONS = {
  open: ['resolved', 'cancelled'],
  resolved: ['reopened'],
  cancelled: ['reopened'],
  reopened: ['resolved', 'cancelled'],
};
/* Status buttons say what they do to the entry, so none reads like the
 * "Discard changes" of a form. */
const VERB = { resolved: 'Mark resolved', cancelled: 'Mark cancelled', reopened: 'Reopen' };
const PAST = { resolved: 'marked resolved', cancelled: 'marked cancelled', reopened: 'reopened' };
const PAGE = 50;
/* A search may come back in partial pages (docs/protocol.md, "Work budget"):
 * one load follows at most this many of them before it asks for a click. */
const PARTIAL_HOPS = 8;
const UNDO_MS = 10000;
/* Length limits of docs/protocol.md ("How parameters are checked"), in bytes
 * of UTF-8, which is what the server counts. */
const LIMITS = { title: 300, body: 32768, comment: 16384 };

const S = {
  token: null, ws: null, nextId: 1, pending: new Map(),
  epoch: null, lastSeq: 0, me: null, tokenId: null, users: new Map(),
  entries: new Map(), cursor: null, partial: false, loading: null, listGen: 0,
  total: null, totalPartial: false, countTimer: null, listHash: '#/',
  view: 'list', entryId: null, entry: null, entryAt: 0,
  present: new Map(), unread: null, unreadAt: 0, unreadMore: 0, known: null,
  retry: 0, retryTimer: null, everOpened: false, stopped: false,
};

const $ = (sel) => document.querySelector(sel);
/* The admin page (web/admin.js, loaded before this file) is told of the
 * route, the connection, sign-out and pushes through these calls. */
const adminHook = (name, arg) => window.CLAdmin && window.CLAdmin[name](arg);

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

/* The exact time, in the viewer's zone: "2026-12-03 10:48:37 UTC+1". */
function exact(iso) {
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const z = (n) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = `UTC${off < 0 ? '-' : '+'}${Math.floor(Math.abs(off) / 60)}` +
    (Math.abs(off) % 60 ? `:${z(Math.abs(off) % 60)}` : '');
  return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())} ` +
    `${z(d.getHours())}:${z(d.getMinutes())}:${z(d.getSeconds())} ${zone}`;
}

/* "just now", "5 min ago", "3 h ago", "2 d ago", then the date. */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
function relative(iso, now) {
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const s = Math.round((now - d) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 7 * 86400) return `${Math.floor(s / 86400)} d ago`;
  return `${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()}`;
}

/* A <time> that reads relative and shows the exact time on hover (and to
 * screen readers, through its label); refreshed every 30 s. */
function when(iso) {
  return el('time', { datetime: iso, title: exact(iso), 'data-rel': '1',
    text: relative(iso, Date.now()) });
}

function refreshTimes() {
  const now = Date.now();
  for (const t of document.querySelectorAll('time[data-rel]')) {
    const r = relative(t.dateTime, now);
    if (t.textContent !== r) t.textContent = r;
  }
}

/* The server's q folding (core/search.c): only ASCII letters fold, every
 * other character matches only itself ("é" is not "É"). */
const foldAscii = (s) => String(s).replace(/[A-Z]+/g, (m) => m.toLowerCase());
const utf8len = (s) => new TextEncoder().encode(s).length;
const num = (n) => n.toLocaleString('en');

/* ---- messages to the user ------------------------------------------- */

let errTimer = null;
function showError(msg) {
  const box = $('#error');
  box.textContent = msg;
  box.hidden = false;
  clearTimeout(errTimer);
  errTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

/* A refusal in plain words; the server's own message stays available as
 * the tooltip of the inline error. */
const PLAIN = {
  too_large: 'This is too long for the server. Shorten it and try again.',
  forbidden: 'You are not allowed to do this: only the entry\'s author or an admin can.',
  not_found: 'This entry or comment no longer exists.',
  conflict: 'Someone changed this entry while you were editing. The page shows their version now; check it and try again.',
  invalid_transition: 'The entry\'s status changed meanwhile, so this change is no longer possible. Check the status and try again.',
  rate_limited: 'That was too fast. Wait a moment and try again.',
  unavailable: 'The server could not save this just now. Nothing was saved; try again in a moment.',
  internal: 'The server had a problem and saved nothing. Try again; if it keeps happening, tell an admin.',
  unauthorized: 'You are not signed in any more. Sign in again.',
};
function describe(err) {
  if (err && err.code && PLAIN[err.code]) return PLAIN[err.code];
  if (err && err.code === 'bad_request') {
    if (/changes nothing/.test(err.message || '')) return 'Nothing was changed.';
    if (/required|empty/.test(err.message || '')) return 'Write something first.';
    return 'The server could not accept this. Check what you wrote and try again.';
  }
  if (err && err.lost) return 'Not connected. Your text is kept; send it again once the page says "live".';
  return 'Something went wrong. Try again.';
}

/* The inline error line of a form (created on first use). */
function formError(form, err) {
  let p = form.querySelector(':scope > .field-error, :scope .field-error');
  if (!p) {
    p = el('p', { class: 'field-error', role: 'alert' });
    form.append(p);
  }
  if (!err) { p.hidden = true; p.textContent = ''; p.removeAttribute('title'); return; }
  p.textContent = typeof err === 'string' ? err : describe(err);
  if (err.message && typeof err !== 'string') p.title = err.message;
  p.hidden = false;
}

/* A counter under a text field: bytes of UTF-8 against the limit, red and
 * explained when over. Returns a check() that is true when it fits. */
function attachCounter(field, limit, what) {
  const c = el('span', { class: 'counter', 'aria-live': 'polite' });
  field.after(c);
  const update = () => {
    const n = utf8len(field.value);
    c.textContent = `${num(n)} / ${num(limit)}`;
    c.classList.toggle('over', n > limit);
    c.title = 'characters; accented letters count 2, emoji 4';
    return n;
  };
  field.addEventListener('input', update);
  update();
  return () => {
    const n = update();
    if (n <= limit) return null;
    return `This ${what} is too long: ${num(n)} characters, at most ${num(limit)} ` +
      '(accented letters count 2, emoji 4). Shorten it and try again.';
  };
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
    for (const p of S.pending.values()) p.reject({ lost: true, message: 'connection lost' });
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
      reject({ lost: true, message: 'not connected' });
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
  if (msg.op === 'presence') { onPresence(msg); return; }
  const p = msg.id !== undefined ? S.pending.get(msg.id) : null;
  if (!p) {
    if (msg.ok === false && msg.error) showError(describe(msg.error));
    return;
  }
  S.pending.delete(msg.id);
  if (msg.ok) p.resolve(msg); else p.reject(msg.error || { message: 'request failed' });
}

/* After (re)connecting: who am I, who is who, then resume or take a fresh snapshot. */
async function start() {
  const who = await query('whoami');
  S.me = who.result.user;
  S.tokenId = who.token;
  $('#me').textContent = `${S.me.name} (${S.me.role})`;
  adminHook('started');
  await loadUsers();
  loadKnown();
  $('#social').hidden = false;
  await joinPresence();                   // before subscribe: a hidden user never shows
  if (S.epoch !== null) {
    const sub = await send({ op: 'subscribe', since: S.lastSeq, epoch: S.epoch });
    if (sub.recovered) { await loadUnread(); return; }   // the missed events are on their way
  }
  await reload();
  await loadUnread();
}

async function loadUsers() {
  const r = await query('getUsers');
  for (const u of r.result.users) S.users.set(u.id, u);
  fillAuthors();
}

function userName(id) {
  const u = S.users.get(id);
  return u ? u.name : null;
}

/* A fresh snapshot of what is on screen, then live from its position. */
async function reload() {
  let at;
  if (S.view === 'entry') {
    at = await loadEntry(S.entryId);
  } else {
    at = await loadList(false);
  }
  if (!at) return;                       // a newer load took over
  const sub = await send({ op: 'subscribe', since: at.at, epoch: at.epoch });
  S.epoch = sub.epoch;
  S.lastSeq = Math.max(at.at, sub.recovered ? at.at : sub.head);
}

/* ---- list ------------------------------------------------------------ */

/* The filter form as strings, in the order they appear in the URL. */
const FILTER_KEYS = ['status', 'kind', 'author', 'mine', 'from', 'to', 'sort', 'q'];

function filterState() {
  const f = new FormData($('#filters'));
  const st = {};
  for (const k of FILTER_KEYS) {
    const v = String(f.get(k) || '').trim();
    if (v) st[k] = v;
  }
  return st;
}

/* A yyyy-mm-dd of a date input as the local midnight starting that day. */
function localDay(v) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v || '');
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return isNaN(d) ? null : d;
}

/* The form as getChangelogEntries params. Dates are whole local days:
 * "from" includes its day, "to" includes its day too. */
function filters() {
  const st = filterState();
  const p = {};
  for (const k of ['status', 'kind', 'q']) if (st[k]) p[k] = st[k];
  if (st.mine && S.me) p.author = S.me.name;
  else if (st.author) p.author = st.author;
  const from = localDay(st.from);
  if (from) p.created_after = new Date(from.getTime() - 1).toISOString();
  const to = localDay(st.to);
  if (to) { to.setDate(to.getDate() + 1); p.created_before = to.toISOString(); }
  if (st.sort === 'activity') p.sort = 'activity';
  return p;
}

/* Does entry e (a push's new state) belong in the list as filtered? The
 * same rules as the server's, q with its ASCII-only folding. */
function matches(e) {
  const f = filters();
  if (f.status && e.status !== f.status) return false;
  if (f.kind && e.kind !== f.kind) return false;
  if (f.author && e.author !== f.author) return false;
  const created = new Date(e.created).getTime();
  if (f.created_after && !(created > new Date(f.created_after).getTime())) return false;
  if (f.created_before && !(created < new Date(f.created_before).getTime())) return false;
  if (f.q) {
    const q = foldAscii(f.q);
    if (!foldAscii(e.title).includes(q) && !foldAscii(e.body || '').includes(q)) return false;
  }
  return true;
}

/* The filters live in the URL (#/?status=open&q=…), so a view can be
 * bookmarked and shared; the form follows the URL on every route. */
function filtersToURL() {
  const qs = new URLSearchParams(filterState()).toString();
  const h = '#/' + (qs ? '?' + qs : '');
  S.listHash = h;
  if (location.hash !== h) history.replaceState(null, '', location.pathname + location.search + h);
}

function filtersFromURL() {
  const i = location.hash.indexOf('?');
  const u = new URLSearchParams(i >= 0 ? location.hash.slice(i + 1) : '');
  const form = $('#filters');
  for (const k of FILTER_KEYS) {
    const f = form.elements[k];
    const v = u.get(k) || '';
    if (f.type === 'checkbox') f.checked = v === '1';
    else {
      if (f.tagName === 'SELECT' && v && ![...f.options].some((o) => o.value === v)) {
        f.append(el('option', { value: v, text: v }));
      }
      f.value = v;
    }
  }
  form.elements.author.disabled = form.elements.mine.checked;
  S.listHash = location.hash || '#/';
  // wide screens show the filters; a phone folds them unless some are set
  if (!window.matchMedia('(max-width: 600px)').matches ||
      Object.keys(filterState()).some((k) => k !== 'q')) $('#more-filters').open = true;
  filterSummary();
}

/* The author choices: every user, kept up to date by user pushes. */
function fillAuthors() {
  const sel = $('#filters').elements.author;
  const v = sel.value;
  const names = [...S.users.values()].map((u) => u.name).sort();
  if (v && !names.includes(v)) names.push(v);
  sel.replaceChildren(el('option', { value: '', text: 'anyone' }),
    ...names.map((n) => el('option', { value: n, text: n })));
  sel.value = v;
}

/*
 * Load the first page (more = false) or the next one. A search may answer
 * partial pages; the load follows them (at most PARTIAL_HOPS) until it has
 * something to show or the walk is done, and only a complete walk with no
 * match says that nothing matches. A load started later (the filters
 * changed) wins: the older one's answers are dropped. Resolves to the first
 * reply (its epoch and at), or null when superseded.
 */
function loadList(more) {
  if (more) {
    if (!S.cursor) return Promise.resolve(null);   // nothing further: never reload the top
    if (S.loading) return S.loading;               // one "more" at a time
  }
  const gen = ++S.listGen;
  const run = (async () => {
    const base = { ...filters(), limit: PAGE };
    let cursor = more ? S.cursor : null;
    let first = null;
    let got = 0;
    for (let hop = 0; hop < PARTIAL_HOPS; hop++) {
      const params = cursor ? { ...base, cursor } : { ...base, count: true };
      const r = await query('getChangelogEntries', params);
      if (gen !== S.listGen) return null;
      if (!first) {
        first = r;
        if (!more) {
          $('#entries').replaceChildren();
          S.entries.clear();
          S.total = r.result.total;
          S.totalPartial = !!r.result.total_partial;
        }
        if (S.epoch === null) S.epoch = r.epoch;
      }
      for (const e of r.result.entries) {
        if (S.entries.has(e.id)) continue;
        S.entries.set(e.id, e);
        $('#entries').append(entryItem(e));
        got++;
      }
      cursor = r.result.next_cursor;
      S.cursor = cursor;
      S.partial = !!r.result.partial;
      if (!S.partial || !cursor || got > 0) break;
    }
    listStatus();
    return first;
  })();
  S.loading = run;
  const clear = () => { if (S.loading === run) S.loading = null; };
  run.then(clear, clear);
  return run;
}

function hasFilters() {
  return Object.keys(filters()).some((k) => k !== 'sort');
}

/* The total again, a moment after pushes that may change who matches. */
function scheduleRecount() {
  clearTimeout(S.countTimer);
  const gen = S.listGen;
  S.countTimer = setTimeout(async () => {
    try {
      const r = await query('getChangelogEntries', { ...filters(), limit: 1, count: true });
      if (gen !== S.listGen) return;
      S.total = r.result.total;
      S.totalPartial = !!r.result.total_partial;
      listStatus();
    } catch (e) { /* the next push or load counts again */ }
  }, 1000);
}

/* "Load more", "nothing matches" and friends, from the list's state. */
/* "Filters · 2 active": on a phone the filters fold away under it. */
function filterSummary() {
  const n = Object.keys(filterState()).filter((k) => k !== 'q').length;
  $('#more-filters > summary').textContent = n ? `Filters · ${n} active` : 'Filters';
}

function listStatus() {
  filterSummary();
  const count = $('#count');
  // nothing at all: the message below says so, without a "0 of 0" above it
  if (typeof S.total === 'number' && (S.entries.size || S.total || S.totalPartial)) {
    const shown = S.entries.size;
    const total = Math.max(S.total, shown);
    // the noun agrees with the total: "1 of 1 entry", "1 of 3 entries"
    const noun = total === 1 && !S.totalPartial ? 'entry' : 'entries';
    count.textContent = `${num(shown)} of ${S.totalPartial ? 'at least ' : ''}${num(total)}` +
      (hasFilters() ? ` matching ${noun}` : ` ${noun}`);
  } else {
    count.textContent = '';
  }
  const more = $('#more');
  more.hidden = !S.cursor;
  more.textContent = S.partial && S.entries.size === 0 ? 'Keep searching' : 'Load more';
  const empty = $('#empty');
  const none = S.entries.size === 0;
  empty.hidden = !none;
  if (!none) return;
  if (S.cursor) {
    empty.replaceChildren(el('span', { text: 'No match in the entries searched so far.' }));
  } else if (hasFilters()) {
    empty.replaceChildren(el('span', { text: 'Nothing matches these filters. ' }),
      el('button', { type: 'button', class: 'ghost', id: 'clear-filters', text: 'Clear filters',
        onclick: clearFilters }));
  } else {
    empty.replaceChildren(el('span', { text: 'Nothing here yet.' }));
  }
}

function clearFilters() {
  const sort = $('#filters').elements.sort.value;
  $('#filters').reset();
  $('#filters').elements.sort.value = sort;        // the order is not a filter
  $('#filters').elements.author.disabled = false;
  filtersToURL();
  loadList(false).catch((err) => showError(describe(err)));
  $('#filters select').focus();
}

function badges(e) {
  return [
    el('span', { class: `badge st-${e.status}`, text: e.status }),
    el('span', { class: 'badge kind', text: e.kind }),
  ];
}

function entryItem(e) {
  const unread = !!(S.unread && S.unread.has(e.id));
  const n = el('li', { class: unread ? 'entry unread' : 'entry', 'data-id': e.id },
    ...(unread ? [el('span', { class: 'badge new', text: 'new' })] : []),
    ...badges(e),
    el('a', { class: 'title', href: `#/entry/${e.id}`, text: e.title }),
    el('div', { class: 'meta' },
      `#${e.id} by ${e.author} · ${e.comments} comment${e.comments === 1 ? '' : 's'} · last activity `,
      when(e.last_activity)));
  return n;
}

function flash(node) {
  node.classList.add('flash');
  setTimeout(() => node.classList.remove('flash'), 1200);
}

/* ---- one entry ------------------------------------------------------- */

async function loadEntry(id) {
  const r = await query('getEntry', { entry: id });
  if (S.view !== 'entry' || S.entryId !== id) return null;
  S.entry = r.result.entry;
  S.entryAt = r.at;
  renderEntry();
  const ul = $('#comments');
  ul.replaceChildren();
  for (const c of r.result.comments) ul.append(commentNode(c));
  if (S.epoch === null) S.epoch = r.epoch;
  learnEntry(r.result);
  readOpenEntry();
  return r;
}

function canManage(e) {
  return S.me && (S.me.role === 'admin' || S.me.id === e.author_id);
}

/* Entry and comment text: the Markdown subset of web/md.js, as DOM nodes. */
function richText(text, cls) {
  const d = el('div', { class: `${cls} md` });
  d.append(window.CLMarkdown.render(text, { isUser: (n) => {
    for (const u of S.users.values()) if (u.name === n) return true;
    return false;
  } }));
  return d;
}

function setTitle() {
  const n = unreadCount();
  const pre = n ? `(${n}) ` : '';
  if (S.view === 'entry' && S.entry) document.title = `${pre}#${S.entry.id} ${S.entry.title} · Changelog`;
  else if (S.view === 'entry') document.title = `${pre}#${S.entryId} · Changelog`;
  else document.title = `${pre}Changelog`;
}

function renderEntry() {
  const e = S.entry;
  const art = $('#entry');
  const kids = [
    el('div', {}, ...badges(e)),
    el('h2', { text: e.title }),
    el('div', { class: 'meta' }, `#${e.id} by ${e.author} · created `, when(e.created),
      ' · updated ', when(e.updated), ` · version ${e.version}`),
    richText(e.body || '', 'body'),
  ];
  if (canManage(e)) {
    const actions = el('div', { class: 'actions' });
    for (const to of TRANSITIONS[e.status] || []) {
      actions.append(el('button', { type: 'button', 'data-status': to, text: VERB[to],
        onclick: () => confirmStatus(actions, e, to) }));
    }
    actions.append(el('button', { type: 'button', class: 'ghost', id: 'edit', text: 'Edit',
      onclick: () => editForm(art, e) }));
    kids.push(actions);
  }
  const hist = e.status_history || [];
  if (hist.length) {
    kids.push(el('details', { id: 'history' }, el('summary', { text: `Status history (${hist.length})` }),
      el('ul', {}, ...hist.map((h) => el('li', { class: 'meta' }, when(h.at),
        `: ${h.by || userName(h.by_id) || `user ${h.by_id}`} set ${h.to} (was ${h.from})`)))));
  }
  art.replaceChildren(...kids);
  setTitle();
}

/* Escape closes what it is pressed in (a form, a confirmation). */
function onEscape(node, close) {
  node.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); close(); }
  });
}

function editForm(art, e) {
  const back = () => { renderEntry(); const b = $('#edit'); if (b) b.focus(); };
  const form = el('form', { class: 'card', id: 'edit-form' },
    el('label', { text: 'Title ' }, el('input', { name: 'title', value: e.title, required: true })),
    el('label', { text: 'Kind ' }, el('select', { name: 'kind' },
      ...['fix', 'change', 'feature'].map((k) => el('option', { value: k, selected: k === e.kind, text: k })))),
    el('label', { text: 'Details ' }, el('textarea', { name: 'body', rows: 5 })),
    el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Save changes' }),
      el('button', { type: 'button', class: 'ghost', text: 'Discard changes', onclick: back })));
  form.querySelector('textarea').value = e.body || '';
  const checkTitle = attachCounter(form.querySelector('input[name=title]'), LIMITS.title, 'title');
  const checkBody = attachCounter(form.querySelector('textarea'), LIMITS.body, 'text');
  onEscape(form, back);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tooLong = checkTitle() || checkBody();
    if (tooLong) { formError(form, tooLong); return; }
    const f = new FormData(form);
    const params = { entry: e.id, expected_version: e.version };
    for (const k of ['title', 'kind', 'body']) {
      if (String(f.get(k)) !== String(e[k] || '')) params[k] = String(f.get(k));
    }
    if (Object.keys(params).length === 2) { back(); return; }
    try {
      await command('editEntry', params);
      formError(form, null);
    } catch (err) { formError(form, err); }
  });
  art.replaceChildren(form);
  form.querySelector('input').focus();
}

/* A status change asks first, in place of the buttons, and can be undone. */
function confirmStatus(actions, e, to) {
  const keep = () => { renderEntry(); const b = $(`#entry button[data-status="${to}"]`); if (b) b.focus(); };
  const box = el('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm status change' },
    el('span', { text: `${VERB[to]}: set #${e.id} to "${to}"? ` }),
    el('button', { type: 'button', class: 'confirm-yes', text: `Yes, ${VERB[to].toLowerCase()}`,
      onclick: () => setStatus(box, e, to) }),
    el('button', { type: 'button', class: 'ghost confirm-no', text: `No, leave it ${e.status}`, onclick: keep }));
  onEscape(box, keep);
  actions.replaceChildren(box);
  box.querySelector('.confirm-yes').focus();
}

/* Where an undo goes: back to the old status when the rules allow it,
 * else (an open entry that was resolved or cancelled) to "reopened". */
function undoTarget(from, to) {
  return (TRANSITIONS[to] || []).includes(from) ? from : 'reopened';
}

async function setStatus(box, e, to) {
  const from = e.status;
  try {
    await command('setStatus', { entry: e.id, status: to, expected_version: e.version });
    offerUndo(e.id, from, to);
  } catch (err) {
    formError(box, err);
  }
}

let toastTimer = null;
function offerUndo(id, from, to) {
  const back = undoTarget(from, to);
  const t = $('#toast');
  const undo = el('button', { type: 'button', class: 'ghost', id: 'undo',
    text: back === from ? `Undo (back to ${from})` : 'Undo (reopen)',
    onclick: async () => {
      t.hidden = true;
      const cur = S.entry && S.entry.id === id ? S.entry : null;
      try {
        await command('setStatus', { entry: id, status: back,
          ...(cur ? { expected_version: cur.version } : {}) });
      } catch (err) { showError(describe(err)); }
    } });
  t.replaceChildren(el('span', { text: `#${id} ${PAST[to]}. ` }), undo);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, UNDO_MS);
}

/* One comment and its replies. parentAuthor: whom it answers (shown on a
 * phone, where deep replies stop indenting). */
function commentNode(c, parentAuthor) {
  const replies = el('ul', { class: 'thread' });
  for (const r of c.replies || []) replies.append(commentNode(r, c.author));
  const li = el('li', { class: 'comment', 'data-cid': c.id, 'data-author': c.author }, replies);
  li._pa = parentAuthor;
  commentParts(li, c);
  return li;
}

/* A comment's author, or an admin, may edit and delete it. */
function canChangeComment(c) {
  return S.me && (S.me.role === 'admin' || S.me.id === c.author_id);
}

/* (Re)build everything of a comment but its replies: after an edit or a
 * deletion only this part changes. A deleted comment is a tombstone: its
 * place, author and replies stay, its text is gone. */
function commentParts(li, c) {
  li._c = c;
  const replies = li.querySelector(':scope > ul.thread');
  const meta = el('div', { class: 'meta' }, `${c.author} · `, when(c.created),
    c.edited && !c.deleted ? el('span', { class: 'edited', title: `edited ${exact(c.edited)}`, text: ' · edited' }) : null,
    li._pa ? el('span', { class: 'replyto', text: ` · ↳ replying to ${li._pa}` }) : null);
  const kids = [el('div', { class: 'cbody' }, meta, c.deleted
    ? el('p', { class: 'ctext tombstone', text: 'This comment was deleted.' })
    : richText(c.body, 'ctext'))];
  if (!c.deleted) {
    kids.push(el('button', { type: 'button', class: 'ghost reply', text: 'Reply',
      'aria-label': `Reply to ${c.author}`, 'aria-expanded': 'false',
      onclick: (ev) => replyForm(li, li._c, ev.currentTarget) }));
    if (canChangeComment(c)) {
      kids.push(el('button', { type: 'button', class: 'ghost cedit', text: 'Edit',
        'aria-label': `Edit ${c.author === (S.me && S.me.name) ? 'your' : `${c.author}'s`} comment`,
        onclick: () => editCommentForm(li) }),
      el('button', { type: 'button', class: 'ghost cdelete', text: 'Delete',
        'aria-label': `Delete ${c.author === (S.me && S.me.name) ? 'your' : `${c.author}'s`} comment`,
        onclick: (ev) => confirmDelete(li, ev.currentTarget) }));
    }
  }
  li.replaceChildren(...kids, replies);
}

function editCommentForm(li) {
  const c = li._c;
  const close = () => {
    commentParts(li, li._c);
    const b = li.querySelector(':scope > button.cedit');
    if (b) b.focus();
  };
  const ta = el('textarea', { name: 'body', rows: 3, 'aria-label': 'Edit the comment' });
  ta.value = c.body;
  const form = el('form', { class: 'edit-comment' }, ta,
    el('div', { class: 'actions' }, el('button', { type: 'submit', text: 'Save comment' }),
      el('button', { type: 'button', class: 'ghost', text: 'Discard changes', onclick: close })));
  const check = attachCounter(ta, LIMITS.comment, 'comment');
  onEscape(form, close);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tooLong = check();
    if (tooLong) { formError(form, tooLong); return; }
    if (ta.value === li._c.body) { close(); return; }
    try {
      await command('editComment', { comment: c.id, body: ta.value });
      li._c = { ...li._c, body: ta.value, edited: li._c.edited || new Date().toISOString() };
      close();
    } catch (err) { formError(form, err); }
  });
  li.querySelector(':scope > .cbody .ctext').replaceWith(form);
  ta.focus();
}

function confirmDelete(li, button) {
  if (li.querySelector(':scope > .confirm')) return;
  const keep = () => { box.remove(); button.focus(); };
  const box = el('div', { class: 'confirm', role: 'group', 'aria-label': 'Confirm deletion' },
    el('span', { text: 'Delete this comment? Its replies stay. ' }),
    el('button', { type: 'button', class: 'confirm-yes', text: 'Yes, delete it',
      onclick: async () => {
        try { await command('deleteComment', { comment: li._c.id }); } catch (err) { formError(box, err); }
      } }),
    el('button', { type: 'button', class: 'ghost confirm-no', text: 'No, keep it', onclick: keep }));
  onEscape(box, keep);
  li.querySelector(':scope > ul.thread').before(box);
  box.querySelector('.confirm-yes').focus();
}

/* comment.edited / comment.deleted pushes carry the event only: the page
 * applies it to the comment it shows. */
function commentChanged(p) {
  const ev = p.event;
  const li = document.querySelector(`#comments li[data-cid="${ev.comment}"]`);
  if (!li || !li._c) return;
  const c = ev.type === 'comment.deleted' ? { ...li._c, deleted: true, body: '' }
    : { ...li._c, body: ev.data.body, edited: ev.ts };
  li._c = c;
  if (!li.querySelector(':scope > .cbody form')) commentParts(li, c);
  flash(li.querySelector(':scope > .cbody'));
  if (!(S.me && ev.actor === S.me.id) && !p.replay) {
    announce(`${userName(ev.actor) || 'someone'} ${ev.type === 'comment.deleted' ? 'deleted' : 'edited'} a comment on #${ev.entry}`);
  }
}

function replyForm(li, c, button) {
  const open = li.querySelector(':scope > form');
  if (open) { open.querySelector('textarea').focus(); return; }
  const close = () => {
    form.remove();
    button.setAttribute('aria-expanded', 'false');
    button.focus();
  };
  const ta = el('textarea', { name: 'body', rows: 2, required: true, placeholder: `Reply to ${c.author}`,
    'aria-label': `Reply to ${c.author}` });
  const form = el('form', { class: 'reply-form' }, ta,
    el('div', { class: 'actions' },
      el('button', { type: 'submit', text: 'Send reply' }),
      el('button', { type: 'button', class: 'ghost cancel', text: 'Cancel', onclick: close })));
  const check = attachCounter(ta, LIMITS.comment, 'reply');
  onEscape(form, close);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tooLong = check();
    if (tooLong) { formError(form, tooLong); return; }
    try {
      await command('addComment', { entry: c.entry, parent: c.id, body: ta.value });
      close();
    } catch (err) { formError(form, err); }
  });
  button.after(form);
  button.setAttribute('aria-expanded', 'true');
  ta.focus();
}

/* ---- live pushes ----------------------------------------------------- */

/* Say a live change to screen readers (the polite aria-live region);
 * changes the user made themselves are not repeated back. */
function announce(text) {
  const a = $('#announce');
  a.textContent = '';
  setTimeout(() => { a.textContent = text; }, 30);
}

function announcePush(p, shown) {
  const ev = p.event;
  if (!ev || !shown || (S.me && ev.actor === S.me.id) || p.replay) return;
  const who = userName(ev.actor) || 'someone';
  const e = p.entry;
  if (ev.type === 'entry.created') announce(`New entry #${e.id} by ${who}: ${e.title}`);
  else if (ev.type === 'entry.status_set') announce(`#${e.id} ${PAST[ev.data.to] || ev.data.to} by ${who}`);
  else if (ev.type === 'entry.edited') announce(`#${e.id} edited by ${who}`);
  else if (ev.type === 'comment.added' && p.comment) {
    const parent = p.comment.parent &&
      document.querySelector(`#comments li[data-cid="${p.comment.parent}"]`);
    announce(parent ? `${who} replied to ${parent.dataset.author} on #${e.id}`
      : `${who} commented on #${e.id}`);
  }
}

function onPush(p) {
  if (typeof p.seq === 'number') {
    if (p.seq <= S.lastSeq) return;       // already reflected
    S.lastSeq = p.seq;
  }
  if (p.user) {
    S.users.set(p.user.id, p.user);
    fillAuthors();
    adminHook('push', p);
  }
  unreadPush(p);
  notifyPush(p);
  if (p.event && (p.event.type === 'comment.edited' || p.event.type === 'comment.deleted')) {
    if (S.view === 'entry' && S.entry && p.event.entry === S.entry.id) commentChanged(p);
    return;
  }
  const e = p.entry;
  if (!e) return;
  const type = p.event ? p.event.type : '';
  // the list: in place, or (by activity) to the top, or out if it left the filter
  const byActivity = filters().sort === 'activity';
  const old = document.querySelector(`#entries li[data-id="${e.id}"]`);
  if (old) {
    if (matches(e)) {
      const n = entryItem(e);
      if (byActivity) { old.remove(); $('#entries').prepend(n); } else old.replaceWith(n);
      flash(n);
      S.entries.set(e.id, e);
    } else {
      old.remove();
      S.entries.delete(e.id);
    }
  } else if ((type === 'entry.created' || byActivity) && matches(e)) {
    const n = entryItem(e);
    $('#entries').prepend(n);
    S.entries.set(e.id, e);
    flash(n);
  }
  if (type === 'entry.created' && typeof S.total === 'number' && matches(e)) S.total++;
  announcePush(p, S.view === 'list' ? S.entries.has(e.id) : !!(S.entry && S.entry.id === e.id));
  if (type.startsWith('entry.') && type !== 'entry.created' && hasFilters()) scheduleRecount();
  listStatus();
  // the open entry
  if (S.view === 'entry' && S.entry && e.id === S.entry.id) {
    const hist = S.entry.status_history || [];
    if (p.event && p.event.type === 'entry.status_set') {
      hist.push({ seq: p.seq, from: p.event.data.from, to: p.event.data.to,
        by: userName(p.event.actor), by_id: p.event.actor, at: p.event.ts });
      if (!userName(p.event.actor)) {
        // a user this page has not heard of: ask once, then show the name
        loadUsers().then(() => { if (S.view === 'entry' && !document.querySelector('#edit-form')) renderEntry(); })
          .catch(() => {});
      }
    }
    // An open edit form is kept (it saves against the version it started
    // from, so a change made meanwhile comes back as a conflict to explain).
    const editing = document.querySelector('#edit-form');
    S.entry = { ...e, status_history: hist };
    if (!editing) renderEntry();
    if (p.comment) addComment(p.comment);
  }
}

/* ---- presence (docs/protocol.md "Presence") --------------------------- */

/* Settings of this browser (not of the user: each device decides). */
const PREF_HIDDEN = 'clg.hidden';
const PREF_NOTIFY = 'clg.notify';
const PREF_KNOWN = 'clg.known';
function pref(k) {
  try { return localStorage.getItem(k); } catch (e) { return null; }
}
function setPref(k, v) {
  try { if (v === null) localStorage.removeItem(k); else localStorage.setItem(k, v); } catch (e) { /* private mode */ }
}

async function joinPresence() {
  const hidden = pref(PREF_HIDDEN) === '1';
  $('#hide-me').checked = hidden;
  const r = await send({ op: 'presence', hidden });
  S.present = new Map(r.users.map((u) => [u.id, u.name]));
  renderPresence();
}

function onPresence(msg) {
  for (const u of msg.arrived || []) S.present.set(u.id, u.name);
  for (const u of msg.left || []) S.present.delete(u.id);
  renderPresence();
}

function renderPresence() {
  const names = [...S.present].filter(([id]) => !S.me || id !== S.me.id)
    .map(([id, n]) => n || userName(id) || `user ${id}`).sort();
  const box = $('#presence');
  const me = $('#hide-me').checked ? ' (you are hidden)' : '';
  if (!names.length) box.replaceChildren(`Nobody else is here${me}`);
  else box.replaceChildren('Here now: ', ...names.map((n) => el('span', { class: 'who', text: n })), me);
}

/* ---- unread marks (docs/protocol.md "Read marks") ---------------------- */

const ACTIVITY = new Set(['entry.created', 'entry.edited', 'entry.status_set', 'comment.added']);

function unreadCount() {
  return S.unread ? S.unread.size + S.unreadMore : 0;
}

async function loadUnread() {
  const r = await query('getUnread');
  S.unread = new Map(r.result.unread.map((u) => [u.entry, u.seq]));
  S.unreadAt = r.at;
  S.unreadMore = Math.max(0, r.result.count - r.result.unread.length);
  renderUnread();
  readOpenEntry();
}

function renderUnread() {
  const n = unreadCount();
  $('#unread-count').textContent = n ? `${num(n)} unread` : '';
  $('#mark-all').hidden = !n;
  for (const li of document.querySelectorAll('#entries li.entry')) {
    const id = Number(li.dataset.id);
    const e = S.entries.get(id);
    if (e && li.classList.contains('unread') !== S.unread.has(id)) li.replaceWith(entryItem(e));
  }
  setTitle();
}

/* The open entry is read as far as the page shows it. */
function readOpenEntry() {
  const id = S.entryId;
  if (S.view !== 'entry' || !S.entry || S.entry.id !== id || !S.unread || !S.unread.has(id) ||
      document.visibilityState === 'hidden') return;
  S.unread.delete(id);
  renderUnread();
  // a refusal ("nothing unread": another tab was first) changes nothing
  command('markRead', { entry: id, upto: Math.max(S.entryAt, S.lastSeq) }).catch(() => {});
}

function unreadPush(p) {
  const ev = p.event;
  if (!ev || !S.me || !S.unread || p.seq <= S.unreadAt) return;
  if (ACTIVITY.has(ev.type) && ev.entry) {
    if (ev.actor === S.me.id) S.unread.delete(ev.entry);   // one's own activity is read
    else S.unread.set(ev.entry, p.seq);
  } else if (ev.type === 'read.marked' && ev.actor === S.me.id) {
    // this user, on another tab or device
    const upto = ev.data.upto;
    if (ev.entry) {
      if ((S.unread.get(ev.entry) || 0) <= upto) S.unread.delete(ev.entry);
    } else {
      for (const [id, seq] of S.unread) if (seq <= upto) S.unread.delete(id);
      S.unreadMore = 0;
    }
  } else {
    return;
  }
  renderUnread();
  if (ev.entry === S.entryId) readOpenEntry();   // open here: read as it arrives
}

async function markAllRead() {
  const upto = S.lastSeq;
  for (const [id, seq] of S.unread || []) if (seq <= upto) S.unread.delete(id);
  S.unreadMore = 0;
  renderUnread();
  try { await command('markAllRead', { upto }); } catch (err) {
    if (err && err.code !== 'bad_request') showError(describe(err));
  }
}

/* ---- notifications (opt-in, per browser) ------------------------------ */

/* What this browser knows the user took part in: entries (authored or
 * commented) and the user's comments, so replies and status changes can
 * be told apart; kept in localStorage, the newest 1000 of each. */
const KNOWN_MAX = 1000;
function loadKnown() {
  let k = null;
  try { k = JSON.parse(pref(PREF_KNOWN) || 'null'); } catch (e) { k = null; }
  const ok = k && k.user === S.me.id && Array.isArray(k.entries) && Array.isArray(k.comments);
  S.known = { user: S.me.id, entries: new Set(ok ? k.entries : []), comments: new Set(ok ? k.comments : []) };
}
function saveKnown() {
  const last = (set) => [...set].slice(-KNOWN_MAX);
  setPref(PREF_KNOWN, JSON.stringify({ user: S.known.user, entries: last(S.known.entries),
    comments: last(S.known.comments) }));
}
function learn(entry, comment) {
  if (!S.known) return;
  const before = S.known.entries.size + S.known.comments.size;
  if (entry) { S.known.entries.delete(entry); S.known.entries.add(entry); }
  if (comment) S.known.comments.add(comment);
  if (S.known.entries.size + S.known.comments.size !== before) saveKnown();
}
function learnEntry(res) {
  if (!S.me) return;
  if (res.entry.author_id === S.me.id) learn(res.entry.id);
  const walk = (cs) => cs.forEach((c) => {
    if (c.author_id === S.me.id) learn(res.entry.id, c.id);
    walk(c.replies || []);
  });
  walk(res.comments || []);
}

function notifyOn() {
  return 'Notification' in window && Notification.permission === 'granted' && pref(PREF_NOTIFY) === '1';
}
function renderNotify() {
  const b = $('#notify');
  b.hidden = !('Notification' in window) || Notification.permission === 'denied';
  const on = notifyOn();
  b.textContent = on ? 'Notifications on' : 'Notify me';
  b.setAttribute('aria-pressed', on ? 'true' : 'false');
  b.title = on ? 'Stop notifications in this browser'
    : 'Notify me of comments on my entries, replies to me and status changes on entries I took part in';
}
function toggleNotify() {
  if (notifyOn()) { setPref(PREF_NOTIFY, null); renderNotify(); return; }
  // asked only here, on the click: browsers want a user gesture
  Promise.resolve(Notification.requestPermission()).then((perm) => {
    if (perm === 'granted') setPref(PREF_NOTIFY, '1');
    renderNotify();
  }).catch(() => renderNotify());
}

/* Which notification a push is for the viewer, or null. */
function notification(p) {
  const ev = p.event;
  const e = p.entry;
  if (!e || ev.actor === S.me.id) return null;
  const who = userName(ev.actor) || 'someone';
  const mine = e.author_id === S.me.id;
  if (ev.type === 'comment.added' && p.comment) {
    const body = p.comment.body.length > 140 ? `${p.comment.body.slice(0, 139)}…` : p.comment.body;
    if (p.comment.parent && S.known.comments.has(p.comment.parent)) {
      return { title: `${who} replied to you on #${e.id}`, body, entry: e.id };
    }
    if (mine) return { title: `${who} commented on your entry #${e.id}`, body, entry: e.id };
  } else if (ev.type === 'entry.status_set' && (mine || S.known.entries.has(e.id))) {
    return { title: `#${e.id} ${PAST[ev.data.to] || ev.data.to} by ${who}`, body: e.title, entry: e.id };
  }
  return null;
}

function notifyPush(p) {
  const ev = p.event;
  if (!ev || !S.me || !S.known) return;
  if (ev.actor === S.me.id) {
    if (ACTIVITY.has(ev.type) && ev.entry) learn(ev.entry, ev.type === 'comment.added' ? ev.comment : null);
    return;                               // never for one's own actions
  }
  if (p.entry && p.entry.author_id === S.me.id) learn(p.entry.id);
  if (p.replay || !notifyOn()) return;    // catch-up from the log: old news
  const n = notification(p);
  if (!n) return;
  try {
    const note = new Notification(n.title, { body: n.body, tag: `clg-${p.seq}` });
    note.onclick = () => { window.focus(); location.hash = `#/entry/${n.entry}`; };
  } catch (e) { /* a browser that only notifies from a service worker */ }
}

function addComment(c) {
  if (document.querySelector(`#comments li[data-cid="${c.id}"]`)) return;
  const parentLi = c.parent ? document.querySelector(`#comments li[data-cid="${c.parent}"]`) : null;
  const n = commentNode(c, parentLi ? parentLi.dataset.author : null);
  const parentList = parentLi ? parentLi.querySelector(':scope > ul.thread') : $('#comments');
  parentList.append(n);
  flash(n.querySelector('.cbody'));
}

/* ---- routing, sign-in ------------------------------------------------ */

function route() {
  const m = location.hash.match(/^#\/entry\/(\d+)$/);
  if (m) {
    S.view = 'entry';
    S.entryId = Number(m[1]);
    S.entry = null;
    $('#list-view').hidden = true;
    $('#entry-view').hidden = false;
    $('#back').setAttribute('href', S.listHash);
  } else if (/^#\/admin(?:$|[/?])/.test(location.hash) && window.CLAdmin) {
    S.view = 'admin';
    $('#list-view').hidden = true;
    $('#entry-view').hidden = true;
  } else {
    S.view = 'list';
    filtersFromURL();
    $('#list-view').hidden = false;
    $('#entry-view').hidden = true;
  }
  setTitle();
  adminHook('route', S.view === 'admin');
  if (S.view === 'admin') return;
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
  adminHook('signedOut');
  $('#social').hidden = true;
  S.unread = null; S.unreadMore = 0; S.present = new Map(); S.known = null;
  setTitle();
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
  const nf = $('#new-form');
  const checkTitle = attachCounter(nf.querySelector('input[name=title]'), LIMITS.title, 'title');
  const checkBody = attachCounter(nf.querySelector('textarea'), LIMITS.body, 'text');
  nf.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tooLong = checkTitle() || checkBody();
    if (tooLong) { formError(nf, tooLong); return; }
    const f = new FormData(nf);
    try {
      await command('createEntry', { title: String(f.get('title')), kind: String(f.get('kind')),
        body: String(f.get('body') || '') });
      nf.reset();
      nf.querySelectorAll('input, textarea').forEach((x) => x.dispatchEvent(new Event('input')));
      formError(nf, null);
      $('#new-entry').open = false;
    } catch (err) { formError(nf, err); }
  });
  const cf = $('#comment-form');
  const checkComment = attachCounter(cf.querySelector('textarea'), LIMITS.comment, 'comment');
  cf.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const tooLong = checkComment();
    if (tooLong) { formError(cf, tooLong); return; }
    const body = cf.querySelector('textarea').value;
    try {
      await command('addComment', { entry: S.entryId, body });
      cf.reset();
      cf.querySelector('textarea').dispatchEvent(new Event('input'));
      formError(cf, null);
    } catch (err) { formError(cf, err); }
  });
  let t = null;
  $('#filters').addEventListener('input', (ev) => {
    const form = $('#filters');
    form.elements.author.disabled = form.elements.mine.checked;
    filtersToURL();
    clearTimeout(t);
    // typing in the search waits for a pause; a select or a box reloads at once
    const delay = ev.target && ev.target.name === 'q' ? 250 : 0;
    t = setTimeout(() => loadList(false).catch((err) => showError(describe(err))), delay);
  });
  setInterval(refreshTimes, 30000);
  document.addEventListener('visibilitychange', refreshTimes);
  $('#filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('#more').addEventListener('click', () => loadList(true).catch((err) => showError(describe(err))));
  $('#mark-all').addEventListener('click', () => markAllRead());
  $('#notify').addEventListener('click', toggleNotify);
  $('#hide-me').addEventListener('change', () => {
    const hidden = $('#hide-me').checked;
    setPref(PREF_HIDDEN, hidden ? '1' : null);
    renderPresence();
    send({ op: 'presence', hidden }).catch(() => {});
  });
  document.addEventListener('visibilitychange', readOpenEntry);
  renderNotify();
  window.addEventListener('hashchange', route);
  route();
  if (invite) signIn(invite);
  else signedIn().then((yes) => (yes ? signIn(null) : signOut()));
}

init();
