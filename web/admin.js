/*
 * admin.js - the admin page of the changelogd browser UI (#/admin).
 *
 * Users, roles, tokens, invite links and revocation, all through the
 * protocol's own commands on the page's one WebSocket (docs/protocol.md,
 * "User and token commands"): createUser, setRole, issueToken,
 * revokeToken, and the getUsers query, which lists each user's tokens
 * (label, created, revoked) to admins only. The server is the judge: a
 * member who forces this page open is refused by it ("forbidden"), and the
 * page says so in plain words.
 *
 * It lives beside web/app.js and uses its helpers (el, query, command,
 * describe, formError, when, onEscape, the state S); app.js calls
 * window.CLAdmin.route/started/signedOut/push. This file is loaded before
 * app.js, so nothing here runs before app.js has been read: the view is
 * built on its first route().
 *
 * A new token is shown once: in the reply of createUser / issueToken, with
 * its invite link (the same form `changelog-admin ... --url` prints,
 * BASE/#token=TOKEN, BASE being this page's origin). The page keeps it only
 * while the panel is open: "Done", another new token or leaving the page
 * clears it.
 *
 * Live: every user.* and token.* push (another admin's change, or this
 * page's own) asks getUsers again, at most once per LIVE_MS; the answer
 * replaces the list, keeping open forms, confirmations and the focus.
 */
'use strict';

window.CLAdmin = (() => {
  const LIVE_MS = 150;
  const A = { built: false, shown: false, users: null, timer: null, busy: false, again: false };
  const ROLE_VERB = { admin: 'Make admin', member: 'Make member' };

  const isAdmin = () => !!(S.me && S.me.role === 'admin');
  const by = (sel, root) => (root || document).querySelector(sel);

  /* A refusal of an admin command in plain words; the server's own message
   * stays in the tooltip (formError). what: 'name' | 'label' | 'role' | 'token'. */
  function plain(err, what, subject) {
    const m = (err && err.message) || '';
    const code = err && err.code;
    if (code === 'forbidden') {
      return what === 'token' ? 'Only an admin or the token\'s owner can revoke it. Nothing was changed.'
        : 'Only admins can manage users and tokens: the server refused this, and nothing was changed.';
    }
    if (code === 'too_large') {
      return what === 'label' ? 'This label is too long: at most 64 characters (accented letters count 2). Shorten it and try again.'
        : 'This name is too long: at most 64 characters. Shorten it and try again.';
    }
    if (code === 'conflict' && /already exists/.test(m)) {
      return `There is already a user named "${subject}". Pick another name (names are case-sensitive).`;
    }
    if (code === 'conflict' && /last admin/.test(m)) {
      return `${subject} is the last admin. Make someone else an admin first.`;
    }
    if (code === 'conflict' && /already revoked/.test(m)) return 'This token was already revoked.';
    if (code === 'bad_request' && /letters, digits/.test(m)) {
      return 'A name may use only letters (a-z, A-Z), digits, ".", "_" and "-"; it may not start with "-" or be only dots.';
    }
    if (code === 'bad_request' && /is required|must not be empty/.test(m) && what === 'name') {
      return 'Give the new user a name.';
    }
    if (code === 'bad_request' && /is already/.test(m)) return `${subject} already has this role.`;
    if (code === 'not_found') return 'This user or token no longer exists. The list shows what is there now.';
    return describe(err);
  }

  /* A result line read out to screen readers (role=status, polite). */
  function status(text) {
    if (!A.built) return;
    const s = by('#admin-status');
    s.textContent = '';
    setTimeout(() => { s.textContent = text; }, 30);
  }

  function build() {
    if (A.built) return;
    A.built = true;
    const view = by('#admin-view');
    const name = el('input', { id: 'nu-name', name: 'name', autocomplete: 'off', spellcheck: 'false',
      autocapitalize: 'none', 'aria-required': 'true', 'aria-describedby': 'nu-hint' });
    const form = el('form', { id: 'new-user-form', class: 'card', 'aria-labelledby': 'nu-title' },
      el('h3', { id: 'nu-title', text: 'New user' }),
      el('div', { class: 'nu-fields' },
        el('div', {}, el('label', { for: 'nu-name', text: 'Name' }), name,
          el('p', { id: 'nu-hint', class: 'muted hint',
            text: '1 to 64 letters, digits, ".", "_" or "-". Case-sensitive.' })),
        el('div', {}, el('label', { for: 'nu-role', text: 'Role' }),
          el('select', { id: 'nu-role', name: 'role' },
            el('option', { value: 'member', text: 'member' }),
            el('option', { value: 'admin', text: 'admin' })))),
      el('button', { type: 'submit', text: 'Create user' }));
    form.addEventListener('submit', (ev) => { ev.preventDefault(); createUser(form); });
    view.append(
      el('p', {}, el('a', { href: '#/', text: '← All entries' })),
      el('h2', { id: 'admin-title', text: 'Users and tokens' }),
      el('p', { id: 'admin-status', class: 'status', role: 'status', 'aria-live': 'polite' }),
      el('div', { id: 'admin-only', class: 'card', hidden: true },
        el('p', { class: 'only', text: 'Admins only.' }),
        el('p', { class: 'muted', text: 'This page manages users and tokens. Ask an admin if you need something changed.' })),
      el('div', { id: 'admin-body' },
        form,
        secretPanel(),
        el('h3', { id: 'users-title', text: 'Users' }),
        el('ul', { id: 'users', class: 'users', 'aria-labelledby': 'users-title' })));
  }

  /* ---- the one-time secret -------------------------------------------- */

  function secretPanel() {
    const row = (id, label, button) => el('div', {},
      el('label', { for: id, text: label }),
      el('div', { class: 'copyrow' },
        el('input', { id, readonly: true, autocomplete: 'off', spellcheck: 'false' }),
        el('button', { type: 'button', id: button, text: button === 'copy-link' ? 'Copy invite link' : 'Copy token',
          onclick: () => copy(id) })));
    const box = el('section', { id: 'secret', class: 'card secret', hidden: true, 'aria-labelledby': 'secret-title' },
      el('h3', { id: 'secret-title', tabindex: '-1' }),
      el('p', { id: 'secret-note' }),
      row('secret-link', 'Invite link', 'copy-link'),
      row('secret-token', 'Token, for programs (Authorization: Bearer …)', 'copy-token'),
      el('p', { id: 'copy-status', class: 'muted', role: 'status', 'aria-live': 'polite' }),
      el('button', { type: 'button', class: 'ghost', id: 'secret-done', text: 'Done: hide the token',
        onclick: () => { clearSecret(); by('#nu-name').focus(); } }));
    onEscape(box, () => { clearSecret(); by('#nu-name').focus(); });
    return box;
  }

  /* The invite link: what `changelog-admin ... --url BASE` prints, with this
   * page's origin as BASE. */
  const inviteLink = (token) => `${location.origin}/#token=${token}`;

  function showSecret(userName, label, token) {
    by('#secret-title').textContent = `New token for ${userName}${label ? ` (${label})` : ''}: shown once`;
    by('#secret-note').textContent = `Send the invite link to ${userName} over a private channel. ` +
      `Opening it signs ${userName} in. Anyone who has it can act as ${userName} until the token is ` +
      'revoked, and this page will not show it again.';
    by('#secret-link').value = inviteLink(token);
    by('#secret-token').value = token;
    by('#copy-status').textContent = '';
    const box = by('#secret');
    box.hidden = false;
    box.scrollIntoView({ block: 'nearest' });
    by('#copy-link').focus();
  }

  function clearSecret() {
    if (!A.built) return;
    by('#secret-link').value = '';
    by('#secret-token').value = '';
    by('#secret').hidden = true;
  }

  async function copy(id) {
    const input = by(`#${id}`);
    const what = id === 'secret-link' ? 'The invite link' : 'The token';
    let ok = false;
    try {
      await navigator.clipboard.writeText(input.value);
      ok = true;
    } catch (e) {
      input.select();
      try { ok = document.execCommand('copy'); } catch (e2) { ok = false; }
    }
    by('#copy-status').textContent = ok ? `${what} is copied.`
      : `${what} could not be copied here: it is selected, copy it with Ctrl+C (or long-press).`;
    if (!ok) input.select();
  }

  /* ---- commands ------------------------------------------------------- */

  async function createUser(form) {
    const f = new FormData(form);
    const name = String(f.get('name') || '');
    const role = String(f.get('role') || 'member');
    const button = by('button[type=submit]', form);
    button.disabled = true;
    try {
      const r = await command('createUser', { name, role });
      formError(form, null);
      form.reset();
      status(`User ${name} created (${role}).`);
      showSecret(name, '', r.token);
      schedule();
    } catch (err) {
      formError(form, plain(err, 'name', name));
      errTitle(form, err);
      by('#nu-name').focus();
    } finally {
      button.disabled = false;
    }
  }

  /* The server's own message as the tooltip of the plain one. */
  function errTitle(node, err) {
    const p = node.querySelector('.field-error');
    if (p && err && err.message) p.title = err.message;
  }

  /* The panel under a user's buttons: one form or question at a time. */
  function openPanel(li, node, focus) {
    const slot = by(':scope > .panel', li);
    slot.replaceChildren(node);
    onEscape(node, () => closePanel(li));
    (focus || node.querySelector('input, button')).focus();
  }

  function closePanel(li, key) {
    const slot = by(':scope > .panel', li);
    const was = slot.firstChild && slot.firstChild.dataset.for;
    slot.replaceChildren();
    const b = by(`[data-key="${key || was}"]`, li);
    if (b) b.focus();
    for (const x of li.querySelectorAll('[aria-expanded="true"]')) x.setAttribute('aria-expanded', 'false');
  }

  function roleQuestion(li, u) {
    const to = u.role === 'admin' ? 'member' : 'admin';
    const self = S.me && S.me.id === u.id;
    const text = to === 'admin'
      ? `Make ${u.name} an admin? Admins can create users, change roles and issue and revoke anyone's tokens.`
      : `Make ${u.name} a member?${self ? ' You will no longer see this page.' : ' They lose this page.'}`;
    const box = el('div', { class: 'confirm', role: 'group', 'aria-label': `Confirm the role change of ${u.name}`,
      'data-for': 'role' },
      el('span', { text: `${text} ` }),
      el('button', { type: 'button', class: 'confirm-yes', text: `Yes, make ${to}`,
        onclick: async (ev) => {
          const yes = ev.currentTarget;
          yes.disabled = true;
          try {
            await command('setRole', { user: u.id, role: to });
            status(`${u.name} is now ${to === 'admin' ? 'an admin' : 'a member'}.`);
            closePanel(li, 'role');
            schedule();
          } catch (err) {
            formError(box, plain(err, 'role', u.name));
            errTitle(box, err);
            yes.disabled = false;
          }
        } }),
      el('button', { type: 'button', class: 'ghost confirm-no', text: `No, keep ${u.role}`,
        onclick: () => closePanel(li, 'role') }));
    openPanel(li, box);
  }

  function issueForm(li, u, button) {
    const label = el('input', { id: `it-label-${u.id}`, name: 'label', autocomplete: 'off',
      'aria-describedby': `it-hint-${u.id}` });
    const form = el('form', { class: 'issue-form', 'data-for': 'issue' },
      el('label', { for: `it-label-${u.id}`, text: `Label of the new token for ${u.name}` }), label,
      el('p', { id: `it-hint-${u.id}`, class: 'muted hint', text: 'Optional, at most 64 characters: say where it is used ("laptop", "CI").' }),
      el('div', { class: 'actions' },
        el('button', { type: 'submit', text: 'Issue token' }),
        el('button', { type: 'button', class: 'ghost', text: 'Cancel', onclick: () => closePanel(li, 'issue') })));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const text = label.value;
      const submit = by('button[type=submit]', form);
      submit.disabled = true;
      try {
        const r = await command('issueToken', { user: u.id, ...(text ? { label: text } : {}) });
        status(`A new token for ${u.name} was issued.`);
        closePanel(li, 'issue');
        showSecret(u.name, text, r.token);
        schedule();
      } catch (err) {
        formError(form, plain(err, 'label', u.name));
        errTitle(form, err);
        submit.disabled = false;
      }
    });
    button.setAttribute('aria-expanded', 'true');
    openPanel(li, form, label);
  }

  function revokeQuestion(tli, u, t) {
    const mine = t.id === S.tokenId;
    const text = mine
      ? `Revoke "${tokenName(t)}"? This is the token this browser is signed in with: revoking it signs you out here, now.`
      : `Revoke "${tokenName(t)}" of ${u.name}? Every browser and program using it is signed out at once; it cannot be undone.`;
    const box = el('div', { class: 'confirm', role: 'group', 'aria-label': `Confirm revoking token ${t.id}` },
      el('span', { text: `${text} ` }),
      el('button', { type: 'button', class: 'confirm-yes', text: mine ? 'Yes, revoke and sign me out' : 'Yes, revoke it',
        onclick: async (ev) => {
          const yes = ev.currentTarget;
          yes.disabled = true;
          try {
            await command('revokeToken', { token: t.id });
            status(`Token "${tokenName(t)}" of ${u.name} is revoked.`);
            box.remove();
            const next = by('button[data-key="issue"]', tli.closest('li.user'));
            if (next) next.focus();
            schedule();
          } catch (err) {
            if (err && err.lost && mine) return;          // the server closed us, as it said
            formError(box, plain(err, 'token', u.name));
            errTitle(box, err);
            yes.disabled = false;
          }
        } }),
      el('button', { type: 'button', class: 'ghost confirm-no', text: 'No, keep it',
        onclick: () => { box.remove(); const b = by('button.revoke', tli); if (b) b.focus(); } }));
    onEscape(box, () => { box.remove(); const b = by('button.revoke', tli); if (b) b.focus(); });
    const old = by(':scope > .confirm', tli);
    if (old) old.remove();
    tli.append(box);
    by('.confirm-yes', box).focus();
  }

  const tokenName = (t) => t.label || `token ${t.id}`;

  /* ---- the list ------------------------------------------------------- */

  function userItem(u) {
    const li = el('li', { class: 'user card', 'data-uid': u.id, 'data-name': u.name },
      el('div', { class: 'uhead' }), el('div', { class: 'actions' }), el('div', { class: 'panel' }),
      el('ul', { class: 'tokens', 'aria-label': `Tokens of ${u.name}` }));
    fillUser(li, u);
    return li;
  }

  /* (Re)fill a user's item, keeping an open form or question. */
  function fillUser(li, u) {
    li._u = u;
    const self = S.me && S.me.id === u.id;
    by(':scope > .uhead', li).replaceChildren(...[
      el('strong', { class: 'uname', text: u.name }), ' ',
      el('span', { class: `badge role role-${u.role}`, text: u.role }),
      self ? el('span', { class: 'you', text: '(you)' }) : null,
      el('span', { class: 'meta' }, ` · user ${u.id} · created `, when(u.created))].filter((k) => k !== null));
    const to = u.role === 'admin' ? 'member' : 'admin';
    const open = by(':scope > .panel', li).firstChild;
    by(':scope > .actions', li).replaceChildren(
      el('button', { type: 'button', class: 'ghost role-btn', 'data-key': 'role', text: ROLE_VERB[to],
        'aria-label': `${ROLE_VERB[to]}: ${u.name}`, onclick: () => roleQuestion(li, li._u) }),
      el('button', { type: 'button', class: 'ghost issue-btn', 'data-key': 'issue', text: 'Issue token',
        'aria-label': `Issue a token for ${u.name}`,
        'aria-expanded': open && open.dataset.for === 'issue' ? 'true' : 'false',
        onclick: (ev) => issueForm(li, li._u, ev.currentTarget) }));
    const ul = by(':scope > ul.tokens', li);
    const kept = new Map([...ul.children].map((t) => [Number(t.dataset.tid), t]));
    const rows = [];
    if (!u.tokens) {
      rows.push(el('li', { class: 'muted', text: 'Tokens are shown to admins only.' }));
    } else if (!u.tokens.length) {
      rows.push(el('li', { class: 'muted', text: 'No tokens.' }));
    }
    for (const t of u.tokens || []) {
      const old = kept.get(t.id);
      const confirm = old && !t.revoked ? by(':scope > .confirm', old) : null;
      rows.push(tokenItem(u, t, confirm));
    }
    ul.replaceChildren(...rows);
  }

  function tokenItem(u, t, confirm) {
    const mine = t.id === S.tokenId;
    const tli = el('li', { class: `token${t.revoked ? ' revoked' : ''}`, 'data-tid': t.id },
      el('span', { class: 'tlabel', text: tokenName(t) }),
      el('span', { class: 'meta' }, ` · token ${t.id} · issued `, when(t.created),
        mine ? ' · this browser' : ''), ' ',
      el('span', { class: `badge tstate t-${t.revoked ? 'revoked' : 'active'}`, text: t.revoked ? 'revoked' : 'active' }));
    if (!t.revoked) {
      tli.append(' ', el('button', { type: 'button', class: 'ghost revoke', 'data-key': `revoke-${t.id}`,
        text: 'Revoke', 'aria-label': `Revoke ${tokenName(t)} of ${u.name}`,
        onclick: () => revokeQuestion(tli, u, t) }));
    }
    if (confirm) tli.append(confirm);
    return tli;
  }

  function render() {
    const ul = by('#users');
    const focusKey = document.activeElement && ul.contains(document.activeElement)
      ? [document.activeElement.closest('li.user') && document.activeElement.closest('li.user').dataset.uid,
        document.activeElement.dataset.key] : null;
    const kept = new Map([...ul.children].map((li) => [Number(li.dataset.uid), li]));
    const items = A.users.map((u) => {
      const li = kept.get(u.id);
      if (!li) return userItem(u);
      fillUser(li, u);
      return li;
    });
    ul.replaceChildren(...items);
    if (focusKey && focusKey[1] && !ul.contains(document.activeElement)) {
      const b = by(`li.user[data-uid="${focusKey[0]}"] [data-key="${focusKey[1]}"]`, ul);
      if (b) b.focus();
    }
  }

  async function load() {
    if (A.busy) { A.again = true; return; }
    A.busy = true;
    try {
      do {
        A.again = false;
        const r = await query('getUsers');
        A.users = r.result.users;
        if (A.shown) render();
      } while (A.again);
    } catch (err) {
      if (!(err && err.lost)) status(describe(err));
    } finally {
      A.busy = false;
    }
  }

  function schedule() {
    if (!A.shown || !isAdmin()) return;
    clearTimeout(A.timer);
    A.timer = setTimeout(load, LIVE_MS);
  }

  const connected = () => !!(S.ws && S.ws.readyState === WebSocket.OPEN && S.me);

  /* Who may see it: the header link for admins only; the route says
   * "admins only" to everyone else (the server refuses them anyway). */
  function guard() {
    by('#admin-link').hidden = !isAdmin();
    if (!A.shown) return;
    const known = !!S.me;
    by('#admin-only').hidden = !known || isAdmin();
    by('#admin-body').hidden = !known || !isAdmin();
    if (known && !isAdmin()) clearSecret();
  }

  return {
    /* route(true): the page is #/admin; route(false): another view. */
    route(shown) {
      if (!shown) {
        if (A.shown) { clearSecret(); by('#admin-view').hidden = true; }
        A.shown = false;
        const link = by('#admin-link');
        if (link) link.removeAttribute('aria-current');
        return;
      }
      build();
      A.shown = true;
      by('#admin-view').hidden = false;
      by('#admin-link').setAttribute('aria-current', 'page');
      document.title = 'Admin · Changelog';
      guard();
      if (connected() && isAdmin()) load();
    },
    /* after each (re)connect's whoami */
    started() {
      guard();
      if (A.shown && isAdmin()) load();
    },
    signedOut() {
      clearSecret();
      by('#admin-link').hidden = true;
    },
    /* a push with a user (user.* and token.* events) */
    push(p) {
      if (S.me && p.user.id === S.me.id && p.user.role !== S.me.role) {
        S.me = { ...S.me, role: p.user.role };
        by('#me').textContent = `${S.me.name} (${S.me.role})`;
        guard();
        if (!isAdmin() && A.shown) status('You are a member now: this page is for admins.');
      }
      schedule();
    },
  };
})();
