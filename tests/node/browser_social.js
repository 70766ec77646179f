// browser_social.js - presence, unread marks and notifications in the web UI
// (issue 18), two people side by side in headless Chromium: presence shows
// who is here and goes when they leave, a hidden user is never shown; an
// entry with someone else's activity is marked unread, the tab title counts
// them, opening the entry clears it, "Mark all read" clears the rest, and
// the marks follow the user to a second browser; with notifications
// granted (through the context) and switched on (a click), the Notification
// constructor is called for a comment on my entry, a reply to my comment
// and a status change on an entry I took part in, and never for my own
// actions. Screenshots at desktop and 390x844. Run by
// tests/integration/test_web_ui.py:
//   node browser_social.js BASE_URL ADMIN_TOKEN OUT_DIR
'use strict';
const { connect } = require('./wsclient');
const { adminToken, outDir, wsBase, T, check, giveUpAfter, launch, newPage, pageErrors,
  signIn, must, run } = require('./browser_util');

giveUpAfter('browser social', 150);

async function main() {
  const admin = await connect(`${wsBase}/ws/${adminToken}`);
  const req = must;
  const rootName = (await req(admin, { op: 'query', name: 'whoami' })).result.user.name;
  const alice = await req(admin, { op: 'createUser', params: { name: 'alice' } });
  const bob = await req(admin, { op: 'createUser', params: { name: 'bob' } });
  const carol = await req(admin, { op: 'createUser', params: { name: 'carol' } });
  const dave = await req(admin, { op: 'createUser', params: { name: 'dave' } });
  const aws = await connect(`${wsBase}/ws/${alice.token}`);
  const bws = await connect(`${wsBase}/ws/${bob.token}`);
  // an entry of root's, made after alice and bob joined: unread for both
  const e0 = (await req(admin, { op: 'createEntry', params: { title: 'Upgrade the build box', kind: 'change' } })).entry;

  const browser = await launch();
  const open = async (token, opts) => {
    const o = opts || {};
    const page = await newPage(browser, { phone: o.phone, permissions: ['notifications'], init: [(hidden) => {
      // observe the Notification constructor; the page's own checks
      // (permission, requestPermission) go to the real one
      const N = window.Notification;
      window.__notes = [];
      function Spy(title, options) {
        window.__notes.push({ title, body: options && options.body });
        try { return new N(title, options); } catch (e) { return {}; }
      }
      Object.defineProperty(Spy, 'permission', { get: () => N.permission });
      Spy.requestPermission = (...a) => N.requestPermission(...a);
      window.Notification = Spy;
      if (hidden) localStorage.setItem('clg.hidden', '1');
    }, !!o.hidden] });
    await signIn(page, token);
    await page.waitForSelector('#entries li.entry', { timeout: T });
    return page;
  };
  const shown = (page) => page.$$eval('#presence .who', (ns) => ns.map((n) => n.textContent));
  const waitShown = (page, name, yes) => page.waitForFunction(([n, y]) =>
    [...document.querySelectorAll('#presence .who')].some((w) => w.textContent === n) === y,
  [name, yes], { timeout: T });
  const item = (id) => `#entries li.entry[data-id="${id}"]`;
  const notes = (page) => page.evaluate(() => window.__notes.map((n) => n.title));

  // ---- presence ----
  const A = await open(alice.token);
  const B = await open(bob.token, { phone: true });
  await waitShown(A, 'bob', true);
  await waitShown(B, 'alice', true);
  check(!(await shown(A)).includes('alice'), 'alice sees bob here, and not herself');
  const C = await open(carol.token, { hidden: true });
  check(await C.isChecked('#hide-me'), "carol's browser remembers she hides");
  const D = await connect(`${wsBase}/ws/${dave.token}`);
  await req(D, { op: 'presence' });
  await waitShown(A, 'dave', true);            // pushed after carol joined: she was flushed too
  check(!(await shown(A)).includes('carol') && !(await shown(B)).includes('carol'), 'hidden carol is shown to nobody');
  const pres = (await req(admin, { op: 'query', name: 'getPresence' })).result.users.map((u) => u.name);
  check(pres.includes('alice') && pres.includes('bob') && pres.includes('dave') && !pres.includes('carol'),
    `getPresence agrees: ${pres}`);
  D.close();
  await waitShown(A, 'dave', false);
  check(true, 'dave leaves: his presence disappears');
  await C.ctx.close();

  // ---- unread marks ----
  await A.waitForSelector(`${item(e0)}.unread .badge.new`, { timeout: T });
  check(await A.title() === '(1) Changelog', `the tab title counts one unread entry: "${await A.title()}"`);
  // bob writes a new entry from his phone
  await B.click('#new-entry summary');
  await B.fill('#new-form input[name=title]', 'Printer queue stalls');
  await B.click('#new-form button[type=submit]');
  await B.waitForSelector('#entries li.entry:has-text("Printer queue stalls")', { timeout: T });
  const x = await B.$eval('#entries li.entry:has-text("Printer queue stalls")', (n) => Number(n.dataset.id));
  check(!(await B.$(`${item(x)}.unread`)), "bob's own entry is not unread for him");
  await A.waitForSelector(`${item(x)}.unread .badge.new`, { timeout: T });
  await A.waitForFunction(() => document.title === '(2) Changelog', null, { timeout: T });
  check(/2 unread/.test(await A.textContent('#unread-count')), "bob's new entry is unread for alice; the title says (2)");
  await A.screenshot({ path: `${outDir}/social-unread-desktop.png`, fullPage: true });
  await B.screenshot({ path: `${outDir}/social-presence-phone.png`, fullPage: true });
  // alice opens it: read
  await A.click(`${item(x)} a.title`);
  await A.waitForSelector('#entry h2', { timeout: T });
  await A.waitForFunction(() => /^\(1\) #/.test(document.title), null, { timeout: T });
  const serverUnread = async () => (await req(aws, { op: 'query', name: 'getUnread' })).result.unread.map((u) => u.entry);
  for (let i = 0; i < 50 && (await serverUnread()).includes(x); i++) await A.waitForTimeout(100);
  check(JSON.stringify(await serverUnread()) === JSON.stringify([e0]), 'opening the entry marked it read on the server');
  // bob comments while alice has it open: it stays read for her
  await req(bws, { op: 'addComment', params: { entry: x, body: 'Happens after lunch.' } });
  await A.waitForSelector('#comments li:has-text("Happens after lunch.")', { timeout: T });
  for (let i = 0; i < 50 && (await serverUnread()).includes(x); i++) await A.waitForTimeout(100);
  check(!(await serverUnread()).includes(x), 'a comment arriving in the open entry is read at once');
  await A.click('#back');
  await A.waitForSelector(`${item(x)}`, { timeout: T });
  check(!(await A.$(`${item(x)}.unread`)) && !!(await A.$(`${item(e0)}.unread`)), 'back in the list: only the other one is unread');

  // the marks follow alice to her second browser
  const A2 = await open(alice.token, { phone: true });
  await A2.waitForSelector(`${item(e0)}.unread`, { timeout: T });
  check(!(await A2.$(`${item(x)}.unread`)) && await A2.title() === '(1) Changelog',
    'a second browser of alice shows the same marks and title');
  await A2.screenshot({ path: `${outDir}/social-unread-phone.png`, fullPage: true });
  await A.click('#mark-all');
  await A.waitForFunction(() => document.title === 'Changelog', null, { timeout: T });
  await A2.waitForFunction(() => document.title === 'Changelog' && !document.querySelector('#entries li.unread'), null, { timeout: T });
  check(await A.isHidden('#mark-all'), '"Mark all read" clears the marks, on both of her browsers, live');
  check((await serverUnread()).length === 0, 'and on the server');
  await A2.ctx.close();

  // ---- notifications ----
  check((await A.textContent('#notify')) === 'Notify me', 'notifications are off until asked for');
  await A.click('#notify');
  await A.waitForFunction(() => document.querySelector('#notify').textContent === 'Notifications on', null, { timeout: T });
  await B.click('#notify');
  await B.waitForFunction(() => document.querySelector('#notify').textContent === 'Notifications on', null, { timeout: T });
  check(true, 'a click turns them on (the permission was granted through the context)');
  const mine = (await req(aws, { op: 'createEntry', params: { title: 'Alice wants dark mode', kind: 'feature' } })).entry;
  await A.waitForSelector(item(mine), { timeout: T });
  // 1. a comment on my entry
  await req(bws, { op: 'addComment', params: { entry: mine, body: 'Me too, please.' } });
  await A.waitForFunction(() => window.__notes.length >= 1, null, { timeout: T });
  // 2. a reply to my comment (alice comments from the page: it is hers)
  await A.click(`${item(e0)} a.title`);
  await A.waitForSelector('#entry h2', { timeout: T });
  await A.fill('#comment-form textarea', 'Which box is it?');
  await A.click('#comment-form button[type=submit]');
  await A.waitForSelector('#comments li:has-text("Which box is it?")', { timeout: T });
  const cid = Number(await A.$eval('#comments li:has-text("Which box is it?")', (n) => n.dataset.cid));
  await req(bws, { op: 'addComment', params: { entry: e0, parent: cid, body: 'The one in room 4.' } });
  await A.waitForFunction(() => window.__notes.length >= 2, null, { timeout: T });
  // 3. a status change on an entry she took part in (root's, she commented)
  await req(admin, { op: 'setStatus', params: { entry: e0, status: 'resolved' } });
  await A.waitForFunction(() => window.__notes.length >= 3, null, { timeout: T });
  // never for her own actions: a status change and a comment of hers
  await A.click('#back');
  await req(aws, { op: 'setStatus', params: { entry: mine, status: 'resolved' } });
  await req(aws, { op: 'addComment', params: { entry: mine, body: 'Done myself.' } });
  // ... and not for what is not hers: bob comments on root's other entry
  const other = (await req(admin, { op: 'createEntry', params: { title: 'Nothing of alice', kind: 'fix' } })).entry;
  await req(bws, { op: 'addComment', params: { entry: other, body: 'Not for alice.' } });
  await A.waitForSelector(`${item(other)}`, { timeout: T });
  // a last push she must see, after all of the above: a reply to her again
  await req(bws, { op: 'addComment', params: { entry: e0, parent: cid, body: 'Sync.' } });
  await A.waitForFunction(() => window.__notes.length >= 4, null, { timeout: T });
  const an = await notes(A);
  check(an.length === 4, `alice got exactly 4 notifications: ${JSON.stringify(an)}`);
  check(an[0] === `bob commented on your entry #${mine}`, `a comment on her entry: "${an[0]}"`);
  check(an[1] === `bob replied to you on #${e0}`, `a reply to her comment: "${an[1]}"`);
  check(an[2] === `#${e0} marked resolved by ${rootName}`, `a status change on an entry she took part in: "${an[2]}"`);
  check(an[3] === `bob replied to you on #${e0}`, 'nothing for her own status change and comment, nor for others\' threads');
  const bn = await notes(B);
  // bob commented on both #e0 and alice's entry: both status changes are his
  // business; his own comments and entry are not
  check(JSON.stringify(bn) === JSON.stringify([`#${e0} marked resolved by ${rootName}`, `#${mine} marked resolved by alice`]),
    `bob got the two status changes on entries he commented on, nothing for his own comments: ${JSON.stringify(bn)}`);
  // off again: nothing more
  await A.click('#notify');
  await A.waitForFunction(() => document.querySelector('#notify').textContent === 'Notify me', null, { timeout: T });
  await req(bws, { op: 'addComment', params: { entry: mine, body: 'Still here?' } });
  await A.waitForFunction((id) => document.querySelector(`#entries li.entry[data-id="${id}"]`) &&
    /3 comments/.test(document.querySelector(`#entries li.entry[data-id="${id}"]`).textContent), mine, { timeout: T });
  check((await notes(A)).length === 4, 'switched off: no more notifications');
  await A.screenshot({ path: `${outDir}/social-notify-desktop.png`, fullPage: true });

  // presence disappears when bob's tab closes
  await B.ctx.close();
  await waitShown(A, 'bob', false);
  check(true, "bob's tab closes: he is no longer shown");
  check(pageErrors() === 0, 'no script errors on the pages');
  await browser.close();
  admin.close(); aws.close(); bws.close();
  console.log('browser social: all checks passed');
}

run(main);
