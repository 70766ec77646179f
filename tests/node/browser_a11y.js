// browser_a11y.js - accessibility and polish of the web UI (issue 18), in
// headless Chromium, light and dark (Playwright's colorScheme emulation),
// desktop and a 390x844 phone: contrast ratios computed in the page from
// the computed colours (WCAG 2.1 formula: text and badges 4.5:1, input
// borders 3:1), an accessible name for every control, an aria-live region
// that says live changes, a one-line header on a phone, deep threads that
// stop indenting on a phone, dark mode. Run by tests/integration/test_web_ui.py:
//   node browser_a11y.js BASE_URL ADMIN_TOKEN OUT_DIR
'use strict';
const { connect } = require('./wsclient');
const { audit, headerLine } = require('./a11y_audit');
const { adminToken, outDir, wsBase, T, check, giveUpAfter, launch, newPage, pageErrors,
  signIn, must, sleep, run } = require('./browser_util');

giveUpAfter('browser a11y', 150);

async function main() {
  const admin = await connect(`${wsBase}/ws/${adminToken}`);
  const req = (obj) => must(admin, obj);
  const alice = await req({ op: 'createUser', params: { name: 'alice' } });
  const longName = 'maximiliana.alexandrina-von-und-zu-lichtenstein-hohenzollern';
  const longUser = await req({ op: 'createUser', params: { name: longName } });
  // entries in all four statuses, and a thread 10 deep
  const ent = {};
  for (const st of ['open', 'resolved', 'cancelled', 'reopened']) {
    ent[st] = (await req({ op: 'createEntry', params: { title: `An entry now ${st}`, kind: 'fix', body: 'Body **text**.' } })).entry;
  }
  await req({ op: 'setStatus', params: { entry: ent.resolved, status: 'resolved' } });
  await req({ op: 'setStatus', params: { entry: ent.cancelled, status: 'cancelled' } });
  await req({ op: 'setStatus', params: { entry: ent.reopened, status: 'resolved' } });
  await req({ op: 'setStatus', params: { entry: ent.reopened, status: 'reopened' } });
  const thread = ent.open;
  let parent = null;
  const deep = [];
  for (let d = 0; d < 10; d++) {
    const r = await req({ op: 'addComment', params: { entry: thread, body: `Level ${d}: a reply that says something of ordinary length about the entry.`, ...(parent ? { parent } : {}) } });
    deep.push(r.comment);
    parent = r.comment;
  }

  const browser = await launch();
  const open = async (token, o) => {
    const page = await signIn(await newPage(browser, { ...o, mobile: o.phone }), token);
    await page.waitForSelector('#entries li.entry');
    return page;
  };

  for (const dark of [false, true]) {
    const mode = dark ? 'dark' : 'light';
    for (const phone of [false, true]) {
      const where = `${mode}, ${phone ? 'phone' : 'desktop'}`;
      const P = await open(phone ? longUser.token : alice.token, { dark, phone });
      let a = await P.evaluate(audit);
      check(dark ? a.bg < 0.05 : a.bg > 0.8, `${where}: the page follows prefers-color-scheme (background luminance ${a.bg.toFixed(3)})`);
      check(a.bad.length === 0, `${where}, list: contrast and names hold (lowest: text ${a.low.text.toFixed(2)}, badges ${a.low.badge.toFixed(2)}, borders ${a.low.border.toFixed(2)}) ${a.bad.join('; ')}`);
      if (phone) {
        const h = await P.evaluate(headerLine);
        check(h.n === 4 && h.spread < 4 && h.height < 56, `${where}: the header is one line, even with a 61-character name (${JSON.stringify(h)})`);
        check(h.width <= 390, `${where}: nothing is wider than the phone (${h.width} px)`);
      }
      await P.screenshot({ path: `${outDir}/a11y-list-${mode}-${phone ? 'phone' : 'desktop'}.png`, fullPage: true });
      if (phone) {
        // a phone browser zooms in on a text field under 16 px when it gets the focus
        const summary = '#more-filters > summary';
        const folded = !(await P.$eval('#more-filters', (d) => d.open));
        if (folded) await P.click(summary);
        const small = await P.$$eval('input:not([type=checkbox]), select, textarea', (ns) => ns
          .filter((n) => n.getClientRects().length && parseFloat(getComputedStyle(n).fontSize) < 16)
          .map((n) => `${n.name || n.id} ${getComputedStyle(n).fontSize}`));
        check(small.length === 0, `${where}: the search and the filters are 16 px or more, no zoom on focus (${small.join(', ')})`);
        if (folded) await P.click(summary);
      }
      // the entry with the deep thread
      await P.click(`#entries li.entry[data-id="${thread}"] a.title`);
      await P.waitForSelector(`#comments li[data-cid="${deep[9]}"]`);
      a = await P.evaluate(audit);
      check(a.bad.length === 0, `${where}, entry: contrast and names hold (lowest: text ${a.low.text.toFixed(2)}, badges ${a.low.badge.toFixed(2)}, borders ${a.low.border.toFixed(2)}) ${a.bad.join('; ')}`);
      const names = await P.$$eval('#comments button.reply', (bs) => bs.map((b) => b.getAttribute('aria-label')));
      check(names.length >= 10 && names.every((n) => /^Reply to (admin|alice)$/.test(n)), `every reply button says whom it answers (${names.length})`);
      const w = await P.evaluate((ids) => ids.map((id) => document.querySelector(`#comments li[data-cid="${id}"] > .cbody`).getBoundingClientRect().width), deep);
      const replyto = await P.$eval(`#comments li[data-cid="${deep[9]}"] .replyto`, (n) => [getComputedStyle(n).display, n.textContent]);
      if (phone) {
        check(w[9] >= 300, `${where}: a reply at depth 9 keeps ${Math.round(w[9])} px of the phone's width (was ~90)`);
        check(w[1] < w[0] && w[2] < w[1] && w[9] === w[3], `${where}: only the first levels indent (${w.map(Math.round)})`);
        check(replyto[0] !== 'none' && /replying to admin/.test(replyto[1]), `${where}: a flattened reply says whom it answers`);
      } else {
        check(w.every((x, i) => i === 0 || x < w[i - 1]), `${where}: on a wide screen every level indents (${w.map(Math.round)})`);
        check(replyto[0] === 'none', `${where}: where the indent shows it, "replying to" is not repeated`);
      }
      await P.screenshot({ path: `${outDir}/a11y-thread-${mode}-${phone ? 'phone' : 'desktop'}.png`, fullPage: true });

      // the aria-live region says what others change, live
      if (!phone && !dark) {
        check(await P.$eval('#announce', (n) => n.getAttribute('aria-live') === 'polite'), 'there is a polite aria-live region');
        await req({ op: 'addComment', params: { entry: thread, body: 'A new top-level comment.' } });
        await P.waitForFunction(() => document.querySelector('#announce').textContent === `admin commented on #1`, null, { timeout: T });
        check(true, 'a live comment is announced: "admin commented on #1"');
        await req({ op: 'addComment', params: { entry: thread, parent: deep[9], body: 'Deeper.' } });
        await P.waitForFunction(() => /^admin replied to admin on #1$/.test(document.querySelector('#announce').textContent), null, { timeout: T });
        check(true, 'a live reply is announced with whom it answers');
        const v = (await req({ op: 'query', name: 'getEntry', params: { entry: thread } })).result.entry.version;
        await req({ op: 'setStatus', params: { entry: thread, status: 'resolved', expected_version: v } });
        await P.waitForFunction(() => document.querySelector('#announce').textContent === '#1 marked resolved by admin', null, { timeout: T });
        check(true, 'a live status change is announced: "#1 marked resolved by admin"');
        await P.fill('#comment-form textarea', 'My own comment.');
        await P.click('#comment-form button[type=submit]');
        await P.waitForSelector('#comments li.comment:has-text("My own comment.")', { timeout: T });
        await sleep(300);
        check(await P.textContent('#announce') === '#1 marked resolved by admin', 'the user\'s own change is not announced back');
        await req({ op: 'createEntry', params: { title: 'Fresh one', kind: 'feature' } });
        await P.click('#back');
        await P.waitForSelector('#entries li.entry:has-text("Fresh one")', { timeout: T });
        await req({ op: 'createEntry', params: { title: 'Fresher one', kind: 'feature' } });
        await P.waitForFunction(() => /^New entry #\d+ by admin: Fresher one$/.test(document.querySelector('#announce').textContent), null, { timeout: T });
        check(true, 'a live new entry is announced on the list');
      }
      await P.context().close();
    }
  }
  check(pageErrors() === 0, 'no script errors on the pages');
  await browser.close();
  admin.close();
  console.log('browser a11y: all checks passed');
}

run(main);
