// browser_admin.js - the admin page of the web UI (issue 18), in headless
// Chromium (Playwright), as an admin uses it: bad names refused in plain
// words, a user created with the keyboard, the one-time invite link copied
// and opened in a fresh browser (signed in as the new user, the token gone
// from the address bar), a token issued, a role changed after a question
// (the other browser sees its Admin link come and go live), another
// admin's changes arriving live, tokens revoked (the browsers using them
// are signed out), the last admin kept, and revoking one's own token
// signing one out. A member gets "admins only", and one who forces the page
// open gets the server's refusal, not tokens. Contrast, names and the phone
// header computed in the page (light and dark); screenshots in OUT_DIR.
// Run by tests/integration/test_web_ui.py:
//   node browser_admin.js BASE_URL ADMIN_TOKEN OUT_DIR
'use strict';
const { connect } = require('./wsclient');
const { audit, headerLine } = require('./a11y_audit');
const { base, adminToken, outDir, wsBase, T, check, giveUpAfter, launch, newPage, pageErrors,
  signIn, must, run } = require('./browser_util');

giveUpAfter('browser admin', 200);

async function main() {
  const admin = await connect(`${wsBase}/ws/${adminToken}`);
  const req = must;
  const me = (await req(admin, { op: 'query', name: 'whoami' })).result.user;
  const users = async () => (await req(admin, { op: 'query', name: 'getUsers' })).result.users;
  const userNamed = async (n) => (await users()).find((u) => u.name === n);
  // a second admin, whose changes the page must show live
  const ops = await req(admin, { op: 'createUser', params: { name: 'ops', role: 'admin' } });
  const other = await connect(`${wsBase}/ws/${ops.token}`);

  const browser = await launch();
  const open = async (url, o = {}) => signIn(await newPage(browser, { ...o, mobile: o.phone,
    permissions: ['clipboard-read', 'clipboard-write'] }), null, url);
  const text = (page, sel) => page.$eval(sel, (n) => n.textContent);
  const waitText = (page, sel, re) => page.waitForFunction(([s, src]) => {
    const n = document.querySelector(s);
    return n && !n.hidden && new RegExp(src).test(n.textContent);
  }, [sel, re.source], { timeout: T });
  const userLi = (name) => `#users li.user[data-name="${name}"]`;

  // ---- the admin's page -------------------------------------------------
  const A = await open(`${base}/#token=${adminToken}`);
  check(await A.isVisible('#admin-link'), 'an admin sees the Admin link in the header');
  await A.click('#admin-link');
  await A.waitForSelector(`${userLi(me.name)} li.token`, { timeout: T });
  check(await A.evaluate(() => location.hash) === '#/admin', 'the link leads to #/admin');
  check(await A.title() === 'Admin · Changelog', 'the page title says Admin');
  const mine = await text(A, `${userLi(me.name)} li.token`);
  check(/^\S+ · token \d+ · issued /.test(mine.trim()) && /this browser/.test(mine) && /active/.test(mine),
    `the admin's own token is listed with its label, state, and "this browser" (${mine.trim()})`);

  // bad names: the server's refusal, in plain words, and nothing created
  const before = (await users()).length;
  const bad = [
    ['', /^Give the new user a name\.$/],
    ['x'.repeat(65), /^This name is too long: at most 64 characters/],
    ['bad name!', /^A name may use only letters/],
    ['--help', /^A name may use only letters/],
    ['..', /^A name may use only letters/],
    [me.name, new RegExp(`^There is already a user named "${me.name}"`)],
  ];
  for (const [name, re] of bad) {
    await A.fill('#nu-name', name);
    await A.click('#new-user-form button[type=submit]');
    await waitText(A, '#new-user-form .field-error', re);
    const e = await A.$eval('#new-user-form .field-error', (n) => [n.textContent, n.title, n.getAttribute('role')]);
    check(!/"name"|bytes|bad_request|conflict/.test(e[0]) && e[1] && e[2] === 'alert',
      `"${name.slice(0, 12)}${name.length > 12 ? '…' : ''}" is refused in plain words: "${e[0]}" (server: ${e[1]})`);
  }
  check((await users()).length === before, 'none of the bad names made a user');

  // a user made with the keyboard only
  await A.fill('#nu-name', '');
  await A.focus('#nu-name');
  await A.keyboard.type('dana');
  await A.keyboard.press('Tab');
  check(await A.evaluate(() => document.activeElement.id) === 'nu-role', 'Tab goes from the name to the role');
  await A.keyboard.press('Tab');
  await A.keyboard.press('Enter');
  await A.waitForSelector('#secret:not([hidden])', { timeout: T });
  check(await A.evaluate(() => document.activeElement.id) === 'copy-link', 'the focus lands on "Copy invite link"');
  await waitText(A, '#admin-status', /^User dana created \(member\)\.$/);
  check(await A.$eval('#admin-status', (n) => n.getAttribute('aria-live') === 'polite' && n.getAttribute('role') === 'status'),
    'the result is said in a polite aria-live status');
  check(!(await A.isVisible('#new-user-form .field-error')), 'the earlier error is gone');
  const link = await A.inputValue('#secret-link');
  const token = await A.inputValue('#secret-token');
  check(link === `${base}/#token=${token}` && /^clg_/.test(token),
    `the invite link is BASE/#token=TOKEN, as changelog-admin --url prints it (${link.slice(0, base.length + 12)}…)`);
  await A.waitForSelector(`${userLi('dana')} .badge.role-member`, { timeout: T });
  const listed = await text(A, userLi('dana'));
  check(/^dana member · user \d+ · created /.test(listed) && !/null|undefined/.test(await text(A, '#users')),
    `dana is in the list, a member (${listed.slice(0, 60)})`);
  await A.click('#copy-link');
  await waitText(A, '#copy-status', /^The invite link is copied\.$/);
  const clip = await A.evaluate(() => navigator.clipboard.readText());
  check(clip === link, 'the copy button put the invite link on the clipboard');

  // the invite link in a fresh browser: signed in as dana, no token in sight
  const B = await open(clip);
  await B.waitForFunction(() => document.querySelector('#me').textContent === 'dana (member)', null, { timeout: T });
  check(!B.url().includes('clg_'), `the fresh browser is signed in as dana and the token left the address bar (${B.url()})`);
  check(await B.isHidden('#admin-link'), 'a member sees no Admin link');
  await B.evaluate(() => { location.hash = '#/admin'; });
  await waitText(B, '#admin-only', /Admins only\./);
  check(await B.isHidden('#admin-body') && (await B.$$('#users li.token')).length === 0,
    'a member who types #/admin gets "Admins only", and no users or tokens');
  await B.screenshot({ path: `${outDir}/admin-member-desktop.png`, fullPage: true });
  // a member who forces the page open: the server refuses, no tokens shown
  await B.evaluate(() => { S.me.role = 'admin'; route(); });
  await B.waitForSelector(`${userLi('dana')}`, { timeout: T });
  check((await B.$$('#users li.token')).length === 0 && /Tokens are shown to admins only/.test(await text(B, '#users')),
    'forced open for a member, the page gets no tokens from the server');
  await B.fill('#nu-name', 'mallory');
  await B.click('#new-user-form button[type=submit]');
  await waitText(B, '#new-user-form .field-error', /^Only admins can manage users and tokens/);
  await B.click(`${userLi('dana')} button.issue-btn`);
  await B.fill(`${userLi('dana')} .issue-form input`, 'sneaky');
  await B.click(`${userLi('dana')} .issue-form button[type=submit]`);
  await waitText(B, `${userLi('dana')} .issue-form .field-error`, /^Only admins can manage users and tokens/);
  check(!(await userNamed('mallory')) && (await userNamed('dana')).tokens.length === 1,
    'and the server refused it: "forbidden" shown in plain words, no user, no token made');
  await B.evaluate(() => { S.me.role = 'member'; route(); });
  await waitText(B, '#admin-only', /Admins only\./);

  // a token for dana: a label too long, then one that fits
  await A.click('#secret-done');
  check(await A.isHidden('#secret') && await A.inputValue('#secret-token') === '', '"Done" hides the secret and forgets it');
  await A.click(`${userLi('dana')} button.issue-btn`);
  check(await A.getAttribute(`${userLi('dana')} button.issue-btn`, 'aria-expanded') === 'true', 'the issue button says its form is open');
  await A.fill(`${userLi('dana')} .issue-form input`, 'é'.repeat(33));
  await A.click(`${userLi('dana')} .issue-form button[type=submit]`);
  await waitText(A, `${userLi('dana')} .issue-form .field-error`, /^This label is too long: at most 64 characters/);
  check(true, 'a 66-byte label is refused in plain words');
  await A.fill(`${userLi('dana')} .issue-form input`, 'phone');
  await A.press(`${userLi('dana')} .issue-form input`, 'Enter');
  await A.waitForSelector('#secret:not([hidden])', { timeout: T });
  check(/dana \(phone\)/.test(await text(A, '#secret-title')), 'the new token is shown once, named');
  await A.waitForSelector(`${userLi('dana')} li.token:has-text("phone")`, { timeout: T });
  await A.click('#copy-link');
  await waitText(A, '#copy-status', /copied/);
  const C = await open(await A.evaluate(() => navigator.clipboard.readText()));
  await C.waitForFunction(() => document.querySelector('#me').textContent === 'dana (member)', null, { timeout: T });
  check(!C.url().includes('clg_'), 'the second invite link signs another browser in as dana');
  await A.screenshot({ path: `${outDir}/admin-desktop.png`, fullPage: true });
  let a = await A.evaluate(audit);
  check(a.bad.length === 0, `light, desktop, admin page: contrast and names hold (lowest: text ${a.low.text.toFixed(2)}, badges ${a.low.badge.toFixed(2)}, borders ${a.low.border.toFixed(2)}) ${a.bad.join('; ')}`);

  // a role change asks first; Escape keeps it; dana's browser follows live
  await A.click(`${userLi('dana')} button.role-btn`);
  await waitText(A, `${userLi('dana')} .panel .confirm`, /^Make dana an admin\?/);
  await A.keyboard.press('Escape');
  check(await A.isHidden(`${userLi('dana')} .panel .confirm`) &&
    await A.evaluate(() => document.activeElement.classList.contains('role-btn')), 'Escape keeps the role and gives the focus back');
  await A.click(`${userLi('dana')} button.role-btn`);
  await A.click(`${userLi('dana')} .panel .confirm-yes`);
  await waitText(A, '#admin-status', /^dana is now an admin\.$/);
  await A.waitForSelector(`${userLi('dana')} .badge.role-admin`, { timeout: T });
  await B.waitForSelector('#admin-link:not([hidden])', { timeout: T });
  await B.waitForSelector(`${userLi('dana')} li.token`, { timeout: T });
  check(await text(B, '#me') === 'dana (admin)' && await B.isHidden('#admin-only'),
    'made admin, dana\'s open page shows the Admin link and the tokens, live');
  await A.click(`${userLi('dana')} button.role-btn`);
  await waitText(A, `${userLi('dana')} .panel .confirm`, /^Make dana a member\?/);
  await A.click(`${userLi('dana')} .panel .confirm-yes`);
  await B.waitForSelector('#admin-link[hidden]', { state: 'attached', timeout: T });
  await waitText(B, '#admin-only', /Admins only\./);
  check(await B.isHidden('#admin-body'),
    'made a member again, dana\'s page hides the link and says "Admins only"');

  // another admin's changes appear live
  await req(other, { op: 'createUser', params: { name: 'erin' } });
  await A.waitForSelector(userLi('erin'), { timeout: T });
  const cli = await req(other, { op: 'issueToken', params: { user: 'dana', label: 'cli' } });
  await A.waitForSelector(`${userLi('dana')} li.token[data-tid="${cli.token_id}"]:has-text("active")`, { timeout: T });
  await req(other, { op: 'revokeToken', params: { token: cli.token_id } });
  await A.waitForSelector(`${userLi('dana')} li.token.revoked[data-tid="${cli.token_id}"]:has-text("revoked")`, { timeout: T });
  check(true, 'another admin\'s new user, new token and revocation appear live');

  // revoking: the browser that used the token is signed out, the other stays
  const dana = await userNamed('dana');
  const phone = dana.tokens.find((t) => t.label === 'phone');
  const initial = dana.tokens.find((t) => t.label === 'initial');
  await A.click(`${userLi('dana')} li.token[data-tid="${phone.id}"] button.revoke`);
  await waitText(A, `${userLi('dana')} li.token[data-tid="${phone.id}"] .confirm`, /signed out at once/);
  await A.click(`${userLi('dana')} li.token[data-tid="${phone.id}"] .confirm-yes`);
  await A.waitForSelector(`${userLi('dana')} li.token.revoked[data-tid="${phone.id}"]`, { timeout: T });
  await C.waitForSelector('#signin:not([hidden])', { timeout: T });
  check(true, 'revoking "phone" signs out the browser that used it');
  check(await B.isHidden('#signin') && await B.isVisible('#conn.conn-on'), 'dana\'s other browser stays signed in');
  const refused = await C.evaluate(() => fetch('/api/v1/queries/whoami', { headers: { 'X-Requested-With': 'x' } }).then((r) => r.status));
  check(refused === 401, 'the server refuses the revoked browser\'s session');
  await A.click(`${userLi('dana')} li.token[data-tid="${initial.id}"] button.revoke`);
  await A.click(`${userLi('dana')} li.token[data-tid="${initial.id}"] .confirm-yes`);
  await B.waitForSelector('#signin:not([hidden])', { timeout: T });
  check(true, 'revoking "initial" signs out the first browser too');
  await A.click(`${userLi('dana')} li.token[data-tid="${phone.id}"] .tlabel`).catch(() => {});
  check((await A.$$(`${userLi('dana')} li.token[data-tid="${phone.id}"] button.revoke`)).length === 0,
    'a revoked token has no Revoke button');

  // the phone, light and dark: one-line header, nothing wider, contrast
  for (const dark of [false, true]) {
    const mode = dark ? 'dark' : 'light';
    const P = await open(`${base}/#token=${adminToken}`, { phone: true, dark });
    await P.click('#admin-link');
    await P.waitForSelector(userLi('erin'), { timeout: T });
    await P.click(`${userLi('erin')} button.issue-btn`);
    await P.fill(`${userLi('erin')} .issue-form input`, `tablet-${mode}`);
    await P.click(`${userLi('erin')} .issue-form button[type=submit]`);
    await P.waitForSelector('#secret:not([hidden])', { timeout: T });
    await P.waitForSelector(`${userLi('erin')} li.token:has-text("tablet-${mode}")`, { timeout: T });
    await P.click(`${userLi('erin')} li.token:has-text("tablet-${mode}") button.revoke`);
    a = await P.evaluate(audit);
    check(dark ? a.bg < 0.05 : a.bg > 0.8, `${mode}, phone: the page follows prefers-color-scheme`);
    check(a.bad.length === 0, `${mode}, phone, admin page: contrast and names hold (lowest: text ${a.low.text.toFixed(2)}, badges ${a.low.badge.toFixed(2)}, borders ${a.low.border.toFixed(2)}) ${a.bad.join('; ')}`);
    const h = await P.evaluate(headerLine);
    check(h.n === 5 && h.spread < 4 && h.height < 56, `${mode}, phone: the header with the Admin link is one line (${JSON.stringify(h)})`);
    check(h.width <= 390, `${mode}, phone: nothing is wider than the phone (${h.width} px)`);
    await P.screenshot({ path: `${outDir}/admin-phone-${mode}.png`, fullPage: true });
    await P.context().close();
  }

  // the last admin stays an admin
  await req(other, { op: 'setRole', params: { user: 'ops', role: 'member' } });
  await A.waitForSelector(`${userLi('ops')} .badge.role-member`, { timeout: T });
  await A.click(`${userLi(me.name)} button.role-btn`);
  await waitText(A, `${userLi(me.name)} .panel .confirm`, /You will no longer see this page/);
  await A.click(`${userLi(me.name)} .panel .confirm-yes`);
  await waitText(A, `${userLi(me.name)} .panel .field-error`, new RegExp(`^${me.name} is the last admin\\. Make someone else an admin first\\.$`));
  check((await userNamed(me.name)).role === 'admin', 'demoting the last admin is refused in plain words');
  await A.keyboard.press('Escape');

  // revoking one's own token says it signs out, and does
  const own = await A.evaluate(() => S.tokenId);
  await A.click(`${userLi(me.name)} li.token[data-tid="${own}"] button.revoke`);
  await waitText(A, `${userLi(me.name)} li.token[data-tid="${own}"] .confirm`, /this browser is signed in with: revoking it signs you out here/);
  check(true, 'revoking the token this browser uses warns that it signs out');
  admin.close();
  await A.click(`${userLi(me.name)} li.token[data-tid="${own}"] .confirm-yes`);
  await A.waitForSelector('#signin:not([hidden])', { timeout: T });
  check(await A.isHidden('#admin-link') && await A.isHidden('#app'), 'and it did: the page asks for a token, the Admin link is gone');

  check(pageErrors() === 0, 'no script errors on the pages');
  other.close();
  await browser.close();
  console.log('browser admin: all checks passed');
}

run(main);
