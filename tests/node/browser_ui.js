// browser_ui.js - the web UI driven in headless Chromium by Playwright, as
// two (then three) people would use it. Run by tests/integration/test_web_ui.py:
//   node browser_ui.js BASE_URL ADMIN_TOKEN OUT_DIR
// It prints "RESTART" when it wants the server restarted and waits until
// the file OUT_DIR/restarted exists before going on. Exits non-zero on the
// first failed check, and after 240 s whatever happens.
'use strict';
const fs = require('fs');
const { connect } = require('./wsclient');
const { adminToken, outDir, wsBase, T, check, giveUpAfter, launch, newPage, signIn,
  must, run } = require('./browser_util');

function waitFile(path) {
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (fs.existsSync(path)) { clearInterval(t); resolve(); }
    }, 100);
  });
}

giveUpAfter('browser ui', 240);

async function main() {
  const admin = await connect(`${wsBase}/ws/${adminToken}`);
  const mk = async (name) => (await must(admin, { op: 'createUser', params: { name, role: 'member' } })).token;
  const aliceTok = await mk('alice');
  const bobTok = await mk('bob');

  const browser = await launch();
  const open = async (token, width) => {
    const page = await signIn(await newPage(browser, { width }), token);
    await page.evaluate(() => { window.__noReload = 1; });
    return page;
  };
  const A = await open(aliceTok);
  const B = await open(bobTok, 390);          // phone width
  check(!(await A.url()).includes('clg_'), 'token is removed from the address bar');

  // A creates an entry; B sees it appear without reload.
  await A.click('#new-entry summary');
  await A.fill('#new-form input[name=title]', 'Login fails after password reset');
  await A.selectOption('#new-form select[name=kind]', 'fix');
  await A.fill('#new-form textarea[name=body]', 'Users who reset their password get a 500.');
  await A.click('#new-form button[type=submit]');
  const itemSel = '#entries li.entry:has-text("Login fails after password reset")';
  await B.waitForSelector(itemSel, { timeout: T });
  check(await B.evaluate(() => window.__noReload === 1), 'B saw the new entry without a reload');
  check((await B.textContent(`${itemSel} .badge.st-open`)) === 'open', 'the new entry shows an open badge');
  await A.screenshot({ path: `${outDir}/ui-list.png`, fullPage: true });

  // A opens it and comments; B opens it and replies in the thread; A sees the reply nested.
  await A.click(`${itemSel} a.title`);
  await A.waitForSelector('#entry h2');
  await A.fill('#comment-form textarea', 'Reproduced on staging.');
  await A.click('#comment-form button');
  await B.click(`${itemSel} a.title`);
  const firstSel = '#comments li.comment:has-text("Reproduced on staging.")';
  await B.waitForSelector(firstSel, { timeout: T });
  check((await B.$$('#entry button[data-status]')).length === 0, "B has no status buttons on A's entry");
  await B.click(`${firstSel} > button.reply`);
  await B.fill(`${firstSel} > form textarea`, 'Fixed by the session patch, please verify.');
  await B.click(`${firstSel} > form button`);
  await A.waitForSelector(`${firstSel} > ul.thread > li.comment:has-text("Fixed by the session patch")`, { timeout: T });
  check(true, 'A sees B\'s reply nested under the first comment, live');
  check(await A.evaluate(() => window.__noReload === 1), 'A never reloaded');

  // The creator can resolve; the admin sees the buttons too.
  const buttons = await A.$$eval('#entry button[data-status]', (bs) => bs.map((b) => b.dataset.status));
  check(JSON.stringify(buttons) === JSON.stringify(['resolved', 'cancelled']), 'creator sees resolve and cancel');
  const C = await open(adminToken);
  await C.click(`${itemSel} a.title`);
  await C.waitForSelector('#entry button[data-status]', { timeout: T });
  check(true, 'admin sees status buttons on A\'s entry');
  await A.click('#entry button[data-status="resolved"]');
  await A.click('#entry .confirm-yes');
  await B.waitForSelector('#entry .badge.st-resolved', { timeout: T });
  check(true, 'B sees the status change in place');
  await A.waitForSelector('#entry button[data-status="reopened"]', { timeout: T });
  await A.screenshot({ path: `${outDir}/ui-entry.png`, fullPage: true });

  // HTML in a title is text.
  await A.click('a[href="#/"]');
  const evil = '<img src=x onerror="window.__xss=1">';
  const r = await admin.request({ op: 'createEntry', params: { title: evil, kind: 'change', body: '<script>window.__xss=2</script>' } });
  check(r.ok, 'admin created an entry with HTML in its title');
  await A.waitForSelector('#entries li.entry a.title >> text=<img src=x', { timeout: T });
  check((await A.$$('#entries img')).length === 0, 'no img element was created from user text');
  check(await A.evaluate(() => window.__xss === undefined), 'no injected script ran');

  // Kill and restart the server: the page reconnects and catches up.
  admin.close();
  const flag = `${outDir}/restarted`;
  if (fs.existsSync(flag)) fs.unlinkSync(flag);
  console.log('RESTART');
  await waitFile(flag);
  const admin2 = await connect(`${wsBase}/ws/${adminToken}`);
  const r2 = await admin2.request({ op: 'createEntry', params: { title: 'Written while A was away', kind: 'feature' } });
  check(r2.ok, 'an entry was written after the restart');
  await A.waitForSelector('#entries li.entry:has-text("Written while A was away")', { timeout: 30000 });
  await A.waitForSelector('#conn.conn-on', { timeout: T });
  check(await A.evaluate(() => window.__noReload === 1), 'A reconnected and caught up without a reload');

  // Errors are readable: an over-long comment is refused with a message.
  await A.click('#entries li.entry:has-text("Login fails") a.title');
  await A.waitForSelector('#comment-form');
  await A.evaluate(() => { document.querySelector('#comment-form textarea').value = 'x'.repeat(20000); });
  await A.click('#comment-form button');
  await A.waitForSelector('#comment-form .field-error:not([hidden])', { timeout: T });
  const msg = await A.textContent('#comment-form .field-error');
  check(msg.length > 0 && !msg.trim().startsWith('{'), `the error is shown as text: "${msg.trim()}"`);

  admin2.close();
  await browser.close();
  console.log('browser ui: all checks passed');
}

run(main);
