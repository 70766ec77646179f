// browser_session.js - staying signed in, in headless Chromium (Playwright).
// Run by tests/integration/test_web_session.py:
//   node browser_session.js BASE_URL ADMIN_TOKEN INVITE_LINK
// (INVITE_LINK: what `changelog-admin user add erin --url BASE_URL` printed)
// An invite link signs a browser in once and leaves no token in the address
// bar, the history or the page's storage; a permalink opened in a new tab
// shows the entry; a reload stays signed in; signing out ends it for every
// tab; another browser asks for a token. Exits non-zero on the first failed
// check, and after 120 s whatever happens.
'use strict';
const { connect } = require('./wsclient');
const { base, adminToken, wsBase, T, check, giveUpAfter, launch, newPage, run } = require('./browser_util');

const invite = process.argv[4];

giveUpAfter('browser session', 120);

async function main() {
  check(invite.startsWith(`${base}/#token=clg_`), `the invite link is BASE/#token=... (${invite.slice(0, base.length + 12)}...)`);
  const admin = await connect(`${wsBase}/ws/${adminToken}`);
  const e = await admin.request({ op: 'createEntry', params: { title: 'Permalink target', kind: 'fix' } });
  check(e.ok, 'admin created an entry');
  admin.close();

  const browser = await launch();
  const page = await newPage(browser);
  const { ctx } = page;

  // the invite link (the server has followed changelog-admin's append:
  // the admin's entry was written after it, and the log is one order)
  await page.goto(invite);
  await page.waitForSelector('#conn.conn-on', { timeout: T });
  await page.waitForFunction(() => document.querySelector('#me').textContent.includes('erin'),
    null, { timeout: T });
  check(!page.url().includes('clg_'), `the token left the address bar (${page.url()})`);
  // the entry before ours is the blank tab; none holds the token
  const n = await page.evaluate(() => history.length);
  await page.goBack();
  check(!page.url().includes('clg_'), `going back finds no token (${page.url()}, ${n} entries)`);
  await page.goForward();
  await page.waitForSelector('#conn.conn-on', { timeout: T });
  check(!page.url().includes('clg_'), `going forward again finds no token (${page.url()})`);
  const storage = await page.evaluate(() => JSON.stringify([{ ...sessionStorage }, { ...localStorage }, document.cookie]));
  check(!storage.includes('clg_') && !storage.includes('cls_'), 'no token or session in page storage or document.cookie');
  const cookies = await ctx.cookies();
  const c = cookies.find((k) => k.name === 'clg_session');
  check(c && c.httpOnly && c.secure && c.sameSite === 'Strict', 'the session cookie is HttpOnly, Secure, SameSite=Strict');

  // a permalink in a new tab of the same browser: signed in, shows the entry
  const tab = await ctx.newPage();
  await tab.goto(`${base}/#/entry/${e.entry}`);
  await tab.waitForSelector('#entry h2', { timeout: T });
  check((await tab.textContent('#entry h2')).includes('Permalink target'), 'a permalink in a new tab shows the entry');
  check(await tab.isHidden('#signin'), 'the new tab did not ask for a token');
  await tab.reload();
  await tab.waitForSelector('#entry h2', { timeout: T });
  check(await tab.isHidden('#signin'), 'a reload stays signed in');

  // another browser: asked for a token, signs in through the form
  const other = await newPage(browser);
  await other.goto(`${base}/#/entry/${e.entry}`);
  await other.waitForSelector('#signin:not([hidden])', { timeout: T });
  check(true, 'another browser is asked for a token');
  await other.fill('#token', adminToken);
  await other.click('#signin-form button');
  await other.waitForSelector('#entry h2', { timeout: T });
  check((await other.textContent('#entry h2')).includes('Permalink target'), 'after signing in it shows the entry');

  // signing out ends the session for every tab of that browser
  await tab.click('#signout');
  await tab.waitForSelector('#signin:not([hidden])', { timeout: T });
  const third = await ctx.newPage();
  await third.goto(`${base}/#/entry/${e.entry}`);
  await third.waitForSelector('#signin:not([hidden])', { timeout: T });
  check(true, 'after signing out a new tab asks for a token');
  const status = await page.evaluate(() => fetch('/api/v1/queries/whoami',
    { headers: { 'X-Requested-With': 'x' } }).then((r) => r.status));
  check(status === 401, 'the old session is refused by the server');
  check(await other.isHidden('#signin'), 'the other browser is still signed in');

  await browser.close();
  console.log('browser session: all checks passed');
}

run(main);
