// browser_find.js - finding things in the web UI (issue 18): author, "mine"
// and date filters beside status, kind and search; sort by last activity;
// filters in the URL (bookmark and share); the result count; relative times
// with the exact time on hover. The page's clock is Playwright's fixed
// clock set from the server's own timestamps, so nothing depends on the
// real date. Run by tests/integration/test_web_ui.py:
//   node browser_find.js BASE_URL ADMIN_TOKEN OUT_DIR
'use strict';
const { connect } = require('./wsclient');
const { adminToken, outDir, wsBase, T, check, giveUpAfter, sleep, launch, newPage,
  pageErrors, signIn, pageWidth, must, run } = require('./browser_util');

giveUpAfter('browser find', 150);

async function main() {
  const admin = await connect(`${wsBase}/ws/${adminToken}`);
  const req = (obj) => must(admin, obj);
  const alice = await req({ op: 'createUser', params: { name: 'alice' } });
  const bob = await req({ op: 'createUser', params: { name: 'bob' } });
  const as = { alice: await connect(`${wsBase}/ws/${alice.token}`), bob: await connect(`${wsBase}/ws/${bob.token}`) };
  const by = async (who, params) => {
    const r = await as[who].request({ op: 'createEntry', params });
    if (!r.ok) throw new Error(JSON.stringify(r));
    return r.entry;
  };
  const E = {};
  E.a1 = await by('alice', { title: 'Login times out', kind: 'fix', body: 'After 30 s.' });
  E.b1 = await by('bob', { title: 'Dashboard redesign', kind: 'feature' });
  E.a2 = await by('alice', { title: 'Upgrade OpenSSL', kind: 'change' });
  E.b2 = await by('bob', { title: 'Crash on empty search', kind: 'fix' });
  E.a3 = await by('alice', { title: 'Dark mode', kind: 'feature' });
  await as.bob.request({ op: 'addComment', params: { entry: E.a1, body: 'Still happens.' } });
  await as.alice.request({ op: 'setStatus', params: { entry: E.a2, status: 'resolved' } });
  const list = async (params) => (await req({ op: 'query', name: 'getChangelogEntries', params })).result.entries.map((e) => e.id);

  const browser = await launch();
  const open = async (token, o) => signIn(await newPage(browser, o), token);
  const rows = (page) => page.$$eval('#entries li.entry', (ls) => ls.map((l) => Number(l.dataset.id)));
  const settle = async (page, want) => {
    await page.waitForFunction((w) => JSON.stringify([...document.querySelectorAll('#entries li.entry')]
      .map((l) => Number(l.dataset.id))) === JSON.stringify(w), want, { timeout: T })
      .catch(() => {});
    return rows(page);
  };

  const A = await open(alice.token);
  await A.waitForSelector('#entries li.entry');
  const all = await list({});
  check(JSON.stringify(await rows(A)) === JSON.stringify(all), 'the list shows every entry, newest first');
  await A.waitForFunction(() => /^5 of 5 entries$/.test(document.querySelector('#count').textContent), null, { timeout: T });
  check(true, 'the count says "5 of 5 entries"');

  // author
  await A.selectOption('#filters select[name=author]', 'bob');
  let got = await settle(A, [E.b2, E.b1]);
  check(JSON.stringify(got) === JSON.stringify([E.b2, E.b1]), 'author "bob" shows only bob\'s entries');
  check(/[?&]author=bob\b/.test(new URL(A.url()).hash), `the filter is in the URL: ${new URL(A.url()).hash}`);
  await A.waitForFunction(() => document.querySelector('#count').textContent === '2 of 2 matching entries', null, { timeout: T });
  check(true, 'the count says "2 of 2 matching entries"');
  // mine
  await A.check('#filters input[name=mine]');
  got = await settle(A, [E.a3, E.a2, E.a1]);
  check(JSON.stringify(got) === JSON.stringify([E.a3, E.a2, E.a1]), '"Mine" shows only alice\'s own entries');
  check(await A.$eval('#filters select[name=author]', (s) => s.disabled), '"Mine" disables the author choice');
  await A.uncheck('#filters input[name=mine]');
  await A.selectOption('#filters select[name=author]', '');

  // date range: whole days, from the server's own creation dates
  const day = (await req({ op: 'query', name: 'getEntry', params: { entry: E.a1 } })).result.entry.created.slice(0, 10);
  const shift = (d, n) => { const x = new Date(`${d}T12:00:00Z`); x.setUTCDate(x.getUTCDate() + n); return x.toISOString().slice(0, 10); };
  await A.fill('#filters input[name=from]', day);
  await A.fill('#filters input[name=to]', day);
  got = await settle(A, all);
  check(JSON.stringify(got) === JSON.stringify(all), `from ${day} to ${day} includes that whole day`);
  await A.fill('#filters input[name=from]', shift(day, 1));
  await A.fill('#filters input[name=to]', '');
  await A.waitForSelector('#empty:not([hidden]) #clear-filters', { timeout: T });
  check((await rows(A)).length === 0, 'from the next day: nothing');
  await A.fill('#filters input[name=from]', '');
  await A.fill('#filters input[name=to]', shift(day, -1));
  await A.waitForSelector('#empty:not([hidden]) #clear-filters', { timeout: T });
  check((await rows(A)).length === 0, 'to the day before: nothing');
  await A.click('#clear-filters');
  got = await settle(A, all);
  check(JSON.stringify(got) === JSON.stringify(all) && new URL(A.url()).hash === '#/', 'Clear filters empties the URL too');

  // sort by last activity, live
  await A.selectOption('#filters select[name=sort]', 'activity');
  const byAct = await list({ sort: 'activity' });
  got = await settle(A, byAct);
  check(JSON.stringify(got) === JSON.stringify(byAct) && byAct[0] === E.a2 && byAct[1] === E.a1,
    `"recent activity" orders as the server's sort=activity: ${got}`);
  await as.bob.request({ op: 'addComment', params: { entry: E.b1, body: 'Mockups attached.' } });
  await A.waitForFunction((id) => Number(document.querySelector('#entries li.entry').dataset.id) === id, E.b1, { timeout: T });
  check(JSON.stringify(await rows(A)) === JSON.stringify(await list({ sort: 'activity' })),
    'a live comment moves its entry to the top, as the server orders it');
  await A.selectOption('#filters select[name=sort]', '');

  // filters in the URL: a shared view opens the same for someone else
  await A.selectOption('#filters select[name=status]', 'open');
  await A.selectOption('#filters select[name=kind]', 'fix');
  await A.fill('#filters input[name=q]', 'crash');
  got = await settle(A, [E.b2]);
  check(JSON.stringify(got) === JSON.stringify([E.b2]), 'status + kind + search combine');
  await A.waitForFunction(() => document.querySelector('#count').textContent === '1 of 1 matching entry', null, { timeout: T })
    .catch(() => {});
  check(await A.textContent('#count') === '1 of 1 matching entry', `one match is singular: "${await A.textContent('#count')}"`);
  await sleep(400);
  const shared = A.url();
  check(/status=open/.test(shared) && /kind=fix/.test(shared) && /q=crash/.test(shared), `the view's URL holds every filter: ${new URL(shared).hash}`);
  const B = await open(bob.token);
  await B.goto(shared);
  await B.waitForSelector('#conn.conn-on', { timeout: T });
  got = await settle(B, [E.b2]);
  check(JSON.stringify(got) === JSON.stringify([E.b2]), 'the shared URL shows bob the same entries');
  check(await B.inputValue('#filters input[name=q]') === 'crash' &&
    await B.inputValue('#filters select[name=status]') === 'open' &&
    await B.inputValue('#filters select[name=kind]') === 'fix', 'and the same filters in the form');
  await B.click(`#entries li.entry[data-id="${E.b2}"] a.title`);
  await B.waitForSelector('#entry h2');
  await B.click('#back');
  await B.waitForSelector('#list-view:not([hidden])');
  check(await B.inputValue('#filters input[name=q]') === 'crash', '"All entries" goes back to the filtered list');
  // the same shared view on a phone, where the filters fold away unless some are set
  const Bp = await open(bob.token, { phone: true, mobile: true });
  await Bp.goto(shared);
  await Bp.waitForSelector('#conn.conn-on', { timeout: T });
  got = await settle(Bp, [E.b2]);
  check(JSON.stringify(got) === JSON.stringify([E.b2]), 'on a phone the shared URL shows the same entries');
  check(await Bp.textContent('#more-filters > summary') === 'Filters · 2 active' &&
    await Bp.inputValue('#filters select[name=status]') === 'open' && await Bp.isVisible('#filters select[name=kind]'),
    'with the filters it sets shown, under "Filters · 2 active" (the search is not counted)');
  check(await pageWidth(Bp) <= 390, `nothing is wider than the phone (${await pageWidth(Bp)} px)`);
  await Bp.screenshot({ path: `${outDir}/find-filters-phone.png`, fullPage: true });
  await Bp.ctx.close();
  // the count follows live changes
  await A.fill('#filters input[name=q]', '');
  await settle(A, await list({ status: 'open', kind: 'fix' }));
  const before = await A.textContent('#count');
  await by('bob', { title: 'Another fix', kind: 'fix' });
  await A.waitForFunction((b) => document.querySelector('#count').textContent !== b, before, { timeout: T });
  check(before === '2 of 2 matching entries' && await A.textContent('#count') === '3 of 3 matching entries',
    `the count follows a live new entry: "${before}" then "${await A.textContent('#count')}"`);
  await as.alice.request({ op: 'setStatus', params: { entry: E.a1, status: 'resolved' } });
  await A.waitForFunction(() => document.querySelector('#count').textContent === '2 of 2 matching entries', null, { timeout: T });
  check(true, 'and an entry that leaves the filter');
  await A.screenshot({ path: `${outDir}/find-filters.png` });

  // relative times, exact on hover: the page's clock is set from the entry's time
  const created = (await req({ op: 'query', name: 'getEntry', params: { entry: E.a3 } })).result.entry.created;
  const t0 = new Date(created).getTime();
  const C = await open(alice.token);
  const timeOf = (page) => page.$eval(`#entries li.entry[data-id="${E.a3}"] time`, (t) => [t.textContent, t.title, t.dateTime]);
  for (const [ms, want] of [[20e3, 'just now'], [5 * 60e3, '5 min ago'], [3 * 3600e3 + 5 * 60e3, '3 h ago'],
    [2 * 86400e3 + 3600e3, '2 d ago']]) {
    await C.clock.setFixedTime(t0 + ms);
    await C.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await C.waitForSelector(`#entries li.entry[data-id="${E.a3}"] time`);
    const [text, title, dt] = await timeOf(C);
    check(text === want, `${ms / 1000} s after: "${text}"`);
    check(title === `${created.slice(0, 10)} ${created.slice(11, 19)} UTC+0` && dt === created, `the exact time on hover: "${title}"`);
  }
  await C.clock.setFixedTime(t0 + 30 * 86400e3);
  await C.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
  const d = new Date(t0);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  check((await timeOf(C))[0] === `${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()}`, 'after a week: the date');
  const K = await open(alice.token, { tz: 'Asia/Kolkata' });
  await K.waitForSelector(`#entries li.entry[data-id="${E.a3}"] time`);
  const k = new Date(t0 + 5.5 * 3600e3).toISOString();
  check((await timeOf(K))[1] === `${k.slice(0, 10)} ${k.slice(11, 19)} UTC+5:30`, 'the exact time is in the viewer\'s zone, which it names');
  await C.screenshot({ path: `${outDir}/find-times.png` });

  check(pageErrors() === 0, 'no script errors on the pages');
  await browser.close();
  admin.close(); as.alice.close(); as.bob.close();
  console.log('browser find: all checks passed');
}

run(main);
