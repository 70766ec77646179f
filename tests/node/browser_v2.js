// browser_v2.js - the web UI's second round (issue 18) driven in headless
// Chromium by Playwright, as a team would use it. Run by
// tests/integration/test_web_ui.py:
//   node browser_v2.js BASE_URL ADMIN_TOKEN OUT_DIR
// The admin's own WebSocket (tests/node/wsclient.js) plays the other people
// and checks what the server holds. Exits non-zero on the first failed
// check, and after 300 s whatever happens.
'use strict';
const { connect } = require('./wsclient');
const { adminToken, outDir, wsBase, T, check, giveUpAfter, sleep, launch, newPage, signIn,
  pageWidth, ask, must, run } = require('./browser_util');

giveUpAfter('browser v2', 300);

let admin;
/* One request as the admin, the rate limit waited out (this script writes
 * a few hundred entries); the reply, or (mustReq) throw unless it is ok. */
const req = (obj) => ask(admin, obj);
const mustReq = (obj) => must(admin, obj);
const mkEntry = (title, body, kind) =>
  mustReq({ op: 'createEntry', params: { title, body: body || '', kind: kind || 'change' } });
/* Many entries, a few requests in flight at a time (they commit together). */
async function mkEntries(n, fn) {
  for (let i = 0; i < n; i += 20) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 20); j++) batch.push(mkEntry(...fn(j)));
    await Promise.all(batch);
  }
}
const bare = (title) => title.replace(/^\(\d+\) /, '');
const getEntry = async (id) => (await mustReq({ op: 'query', name: 'getEntry', params: { entry: id } })).result;

async function main() {
  admin = await connect(`${wsBase}/ws/${adminToken}`);
  const mk = async (name, role) => (await mustReq({ op: 'createUser', params: { name, role: role || 'member' } })).token;
  const aliceTok = await mk('alice');

  const browser = await launch();
  const open = async (token, opts) => {
    const page = await signIn(await newPage(browser, opts), token);
    await page.evaluate(() => { window.__noReload = 1; });
    return page;
  };
  const rows = (page) => page.$$eval('#entries li.entry', (ls) => ls.map((l) => Number(l.dataset.id)));
  const visible = (page, sel) => page.$eval(sel, (n) => !!(n.offsetWidth || n.offsetHeight || n.getClientRects().length));

  // ---- Load more: hidden when there is no next page, never duplicates ----
  for (let i = 1; i <= 23; i++) await mkEntry(`Seed entry ${i}`, `Body of seed ${i}`, ['fix', 'change', 'feature'][i % 3]);
  const A = await open(aliceTok);
  await A.waitForSelector('#entries li.entry', { timeout: T });
  check((await rows(A)).length === 23, 'the list shows the 23 entries');
  check(!(await visible(A, '#more')), '"Load more" is not shown when there is no next page');
  await A.evaluate(() => document.querySelector('#more').click());
  await sleep(500);
  check((await rows(A)).length === 23, 'clicking "Load more" anyway does not duplicate the list');
  // (the unread count, "(23) ", leads the title: browser_social.js tests it)
  check(bare(await A.title()) === 'Changelog', 'the list page is titled "Changelog"');
  await mkEntries(37, (i) => [`Seed entry ${i + 24}`, `Body of seed ${i + 24}`]);
  await A.waitForFunction(() => document.querySelectorAll('#entries li.entry').length === 60, null, { timeout: T });
  await A.reload();
  await A.waitForSelector('#conn.conn-on', { timeout: T });
  await A.evaluate(() => { window.__noReload = 1; });
  await A.waitForFunction(() => document.querySelectorAll('#entries li.entry').length === 50, null, { timeout: T });
  check(await visible(A, '#more'), '"Load more" is shown when there are older entries');
  check((await A.textContent('#count')) === '50 of 60 entries', `the count says what is shown of how many: "${await A.textContent('#count')}"`);
  await A.click('#more');
  await A.evaluate(() => document.querySelector('#more').click());  // a second click while loading
  await A.waitForFunction(() => document.querySelectorAll('#entries li.entry').length >= 60, null, { timeout: T });
  await sleep(300);
  const ids = await rows(A);
  check(ids.length === 60 && new Set(ids).size === 60, '"Load more" adds the 10 older entries once');
  check(!(await visible(A, '#more')), '"Load more" disappears after the last page');
  check((await A.textContent('#count')) === '60 of 60 entries', 'the count follows: "60 of 60 entries"');

  // ---- a filter that matches nothing says so and offers to clear ----
  await A.fill('#filters input[name=q]', 'no such words anywhere');
  await A.waitForSelector('#empty:not([hidden]) #clear-filters', { timeout: T });
  const emptyText = await A.textContent('#empty');
  check(/Nothing matches these filters/.test(emptyText) && !/Nothing here yet/.test(emptyText),
    `an empty filter result says nothing matches: "${emptyText.trim()}"`);
  check((await A.textContent('#count')) === '', `and no "0 of 0" count beside it: "${await A.textContent('#count')}"`);
  await A.screenshot({ path: `${outDir}/v2-nothing-matches.png` });
  await A.click('#clear-filters');
  await A.waitForFunction(() => document.querySelectorAll('#entries li.entry').length === 50, null, { timeout: T });
  check(await A.inputValue('#filters input[name=q]') === '', '"Clear filters" empties the search and shows everything');

  // ---- live pushes filter with the server's ASCII-only folding ----
  await A.fill('#filters input[name=q]', 'école');
  await A.waitForSelector('#empty:not([hidden])', { timeout: T });
  const e1 = (await mkEntry('ÉCOLE closed on Monday')).entry;
  const e2 = (await mkEntry('éCOLE open on Tuesday')).entry;
  await A.waitForSelector(`#entries li.entry[data-id="${e2}"]`, { timeout: T });
  check(!(await A.$(`#entries li.entry[data-id="${e1}"]`)), 'a live entry "ÉCOLE…" does not match q "école" (only ASCII folds)');
  const srv = await mustReq({ op: 'query', name: 'getChangelogEntries', params: { q: 'école' } });
  check(JSON.stringify(srv.result.entries.map((e) => e.id)) === JSON.stringify(await rows(A)),
    'the live list holds exactly what the server answers for the same q');
  await A.fill('#filters input[name=q]', '');

  // ---- actor names on live status changes ----
  const mine = (await (async () => {
    await A.click('#new-entry summary');
    await A.fill('#new-form input[name=title]', 'Export to CSV drops accents');
    await A.fill('#new-form textarea[name=body]', 'Names like Zoë come out as Zo?.');
    await A.click('#new-form button[type=submit]');
    await A.waitForSelector('#entries li.entry:has-text("Export to CSV drops accents")', { timeout: T });
    return A.$eval('#entries li.entry:has-text("Export to CSV drops accents")', (n) => Number(n.dataset.id));
  })());
  await A.click(`#entries li.entry[data-id="${mine}"] a.title`);
  await A.waitForSelector('#entry h2');
  check(bare(await A.title()) === `#${mine} Export to CSV drops accents · Changelog`, `the entry page is titled "${await A.title()}"`);
  // carol joins after A's page loaded: her name reaches A through the user pushes
  await mk('carol', 'admin');
  const carol = await connect(`${wsBase}/ws/${(await mustReq({ op: 'issueToken', params: { user: 'carol' } })).token}`);
  let v = (await getEntry(mine)).entry.version;
  const rs = await carol.request({ op: 'setStatus', params: { entry: mine, status: 'resolved', expected_version: v } });
  check(rs.ok, 'carol (admin) resolved alice\'s entry');
  await A.waitForSelector('#entry .badge.st-resolved', { timeout: T });
  await A.click('#history summary');
  const hist = await A.textContent('#history ul');
  check(/carol set resolved \(was open\)/.test(hist) && !/user \d/.test(hist), `the live status change names its actor: "${hist.trim()}"`);
  check(await A.evaluate(() => window.__noReload === 1), 'A never reloaded for it');
  v = (await getEntry(mine)).entry.version;
  check((await carol.request({ op: 'setStatus', params: { entry: mine, status: 'reopened', expected_version: v } })).ok, 'carol reopened it');
  await A.waitForSelector('#entry .badge.st-reopened', { timeout: T });
  carol.close();

  // ---- live title ----
  v = (await getEntry(mine)).entry.version;
  await mustReq({ op: 'editEntry', params: { entry: mine, title: 'Export to CSV drops accents (UTF-8)', expected_version: v } });
  await A.waitForFunction((t) => document.title.replace(/^\(\d+\) /, '') === t, `#${mine} Export to CSV drops accents (UTF-8) · Changelog`, { timeout: T });
  check(true, 'the page title follows a live edit of the entry title');

  // ---- status buttons: named for what they do, confirmed, undoable ----
  const labels = await A.$$eval('#entry button[data-status]', (bs) => bs.map((b) => b.textContent));
  check(JSON.stringify(labels) === JSON.stringify(['Mark resolved', 'Mark cancelled']), `status buttons say what they do: ${labels}`);
  await A.click('#entry button[data-status="cancelled"]');
  await A.waitForSelector('#entry .confirm', { timeout: T });
  const question = await A.textContent('#entry .confirm');
  check(/cancelled/.test(question) && /No, leave it reopened/.test(question), `a status change asks first: "${question.trim()}"`);
  await A.keyboard.press('Escape');
  await A.waitForSelector('#entry button[data-status="cancelled"]', { timeout: T });
  check((await getEntry(mine)).entry.status === 'reopened', 'Escape at the question changes nothing');
  await A.click('#entry button[data-status="cancelled"]');
  await A.click('#entry .confirm-no');
  check((await getEntry(mine)).entry.status === 'reopened', '"No" at the question changes nothing');
  await A.click('#entry button[data-status="resolved"]');
  await A.click('#entry .confirm-yes');
  await A.waitForSelector('#entry .badge.st-resolved', { timeout: T });
  await A.waitForSelector('#toast:not([hidden]) #undo', { timeout: T });
  check((await A.textContent('#undo')) === 'Undo (back to reopened)', 'the change offers an undo back to the old status');
  await A.screenshot({ path: `${outDir}/v2-undo.png` });
  await A.click('#undo');
  await A.waitForSelector('#entry .badge.st-reopened', { timeout: T });
  check((await getEntry(mine)).entry.status === 'reopened', 'Undo put the entry back to reopened, on the server');
  await A.click('#entry #edit');
  const editButtons = await A.$$eval('#edit-form button', (bs) => bs.map((b) => b.textContent));
  check(JSON.stringify(editButtons) === JSON.stringify(['Save changes', 'Discard changes']),
    `the edit form's buttons cannot be read as a status change: ${editButtons}`);

  // ---- a server refusal in plain words, inline: an edit that lost a race ----
  v = (await getEntry(mine)).entry.version;
  await mustReq({ op: 'editEntry', params: { entry: mine, body: 'Changed by the admin meanwhile.', expected_version: v } });
  await sleep(500);                                  // let the push land
  check(!!(await A.$('#edit-form')), 'a live change does not throw away the open edit form');
  await A.fill('#edit-form input[name=title]', 'Export to CSV loses accents');
  await A.click('#edit-form button[type=submit]');
  await A.waitForSelector('#edit-form .field-error:not([hidden])', { timeout: T });
  const conflict = await A.textContent('#edit-form .field-error');
  check(/Someone changed this entry/.test(conflict) && !/expected_version|"/.test(conflict),
    `a stale edit is explained in plain words: "${conflict}"`);
  check(await A.$eval('#error', (n) => n.hidden), 'and inline, not in the page-wide banner');
  await A.keyboard.press('Escape');
  await A.waitForSelector('#entry #edit', { timeout: T });
  check(!(await A.$('#edit-form')), 'Escape closes the edit form');

  // ---- character counter and a too-long comment ----
  await A.fill('#comment-form textarea', 'é'.repeat(10));
  check((await A.textContent('#comment-form .counter')) === '20 / 16,384', 'the counter counts what the server counts (é is 2)');
  const before = (await getEntry(mine)).entry.comments;
  await A.fill('#comment-form textarea', 'x'.repeat(20000));
  check(await A.$eval('#comment-form .counter', (n) => n.classList.contains('over')), 'the counter turns red past the limit');
  await A.click('#comment-form button[type=submit]');
  await A.waitForSelector('#comment-form .field-error:not([hidden])', { timeout: T });
  const tooLong = await A.textContent('#comment-form .field-error');
  check(/too long: 20,000 characters, at most 16,384/.test(tooLong) && !/"body"|bytes/.test(tooLong),
    `a too-long comment is refused inline in plain words: "${tooLong}"`);
  await sleep(300);
  check((await getEntry(mine)).entry.comments === before, 'and nothing was sent');
  await A.screenshot({ path: `${outDir}/v2-too-long.png`, fullPage: true });
  await A.fill('#comment-form textarea', 'Reproduced with Zoë and Ångström.');
  await A.click('#comment-form button[type=submit]');
  await A.waitForSelector('#comments li.comment:has-text("Ångström")', { timeout: T });
  check(await A.$eval('#comment-form .field-error', (n) => n.hidden), 'the error goes away after a good comment');

  // ---- the reply form closes: Cancel and Escape ----
  const first = '#comments li.comment:has-text("Ångström")';
  await A.click(`${first} > button.reply`);
  await A.waitForSelector(`${first} > form textarea`);
  check((await A.getAttribute(`${first} > button.reply`, 'aria-label')) === 'Reply to alice', 'the reply button says whom it answers');
  await A.fill(`${first} > form textarea`, 'never sent');
  await A.keyboard.press('Escape');
  check(!(await A.$(`${first} > form`)), 'Escape closes the reply form');
  check(await A.evaluate(() => document.activeElement && document.activeElement.classList.contains('reply')),
    'and gives focus back to the Reply button');
  await A.click(`${first} > button.reply`);
  await A.click(`${first} > form button.cancel`);
  check(!(await A.$(`${first} > form`)), '"Cancel" closes the reply form');
  await sleep(200);
  check((await getEntry(mine)).entry.comments === before + 1, 'no reply was sent by closing');

  // ---- the same at a phone's width: nothing matches, the reply form, the question and undo, a too-long comment ----
  const Ph = await open(aliceTok, { phone: true, mobile: true });
  await Ph.waitForSelector('#entries li.entry', { timeout: T });
  await Ph.fill('#filters input[name=q]', 'no such words anywhere');
  await Ph.waitForSelector('#empty:not([hidden]) #clear-filters', { timeout: T });
  check(/Nothing matches these filters/.test(await Ph.textContent('#empty')), 'phone: an empty result says nothing matches');
  check(await pageWidth(Ph) <= 390, `phone: nothing is wider than the screen (${await pageWidth(Ph)} px)`);
  await Ph.screenshot({ path: `${outDir}/v2-nothing-matches-phone.png` });
  await Ph.click('#clear-filters');
  await Ph.waitForSelector(`#entries li.entry[data-id="${mine}"]`, { timeout: T });
  await Ph.click(`#entries li.entry[data-id="${mine}"] a.title`);
  await Ph.waitForSelector(first, { timeout: T });
  await Ph.click(`${first} > button.reply`);
  await Ph.waitForSelector(`${first} > form button.cancel`);
  await Ph.screenshot({ path: `${outDir}/v2-reply-phone.png` });
  await Ph.keyboard.press('Escape');
  check(!(await Ph.$(`${first} > form`)), 'phone: Escape closes the reply form');
  const st = (await getEntry(mine)).entry.status;
  await Ph.click('#entry button[data-status="resolved"]');
  await Ph.waitForSelector('#entry .confirm-yes', { timeout: T });
  await Ph.click('#entry .confirm-yes');
  await Ph.waitForSelector('#toast:not([hidden]) #undo', { timeout: T });
  const toast = await Ph.$eval('#toast', (t) => t.getBoundingClientRect());
  check(toast.left >= 0 && toast.right <= 390, `phone: the undo toast fits the screen (${Math.round(toast.left)}..${Math.round(toast.right)})`);
  const undoLines = await Ph.$eval('#undo', (u) => { const r = document.createRange(); r.selectNodeContents(u); return r.getClientRects().length; });
  check(undoLines === 1 && toast.width > 300, `phone: it uses the screen's width (${Math.round(toast.width)} px), its Undo on one line (${undoLines})`);
  await Ph.screenshot({ path: `${outDir}/v2-undo-phone.png` });
  await Ph.click('#undo');
  await Ph.waitForSelector(`#entry .badge.st-${st}`, { timeout: T });
  check((await getEntry(mine)).entry.status === st, `phone: Undo puts the entry back to ${st}`);
  const n = (await getEntry(mine)).entry.comments;
  await Ph.fill('#comment-form textarea', 'x'.repeat(20000));
  await Ph.click('#comment-form button[type=submit]');
  await Ph.waitForSelector('#comment-form .field-error:not([hidden])', { timeout: T });
  check(/too long: 20,000 characters, at most 16,384/.test(await Ph.textContent('#comment-form .field-error')),
    'phone: a too-long comment is refused inline in plain words');
  await Ph.screenshot({ path: `${outDir}/v2-too-long-phone.png`, fullPage: true });
  check((await getEntry(mine)).entry.comments === n, 'phone: and nothing was sent');

  // ---- a search that comes back in partial pages keeps going ----
  await A.click('a[href="#/"]');
  await A.waitForSelector('#list-view:not([hidden])');
  const needle = (await mkEntry('Old report about xyzzy', 'The only one.')).entry;
  const filler = 'lorem ipsum dolor sit amet '.repeat(1200).slice(0, 32000);
  await mkEntries(140, (i) => [`Bulk entry ${i}`, filler]);
  const p1 = await mustReq({ op: 'query', name: 'getChangelogEntries', params: { q: 'xyzzy', limit: 50 } });
  check(p1.result.partial === true && p1.result.entries.length === 0,
    'precondition: the server answers q "xyzzy" with an empty partial first page');
  await A.evaluate(() => {
    window.__sawNothing = false;
    new MutationObserver(() => {
      const e = document.querySelector('#empty');
      if (!e.hidden && /Nothing matches/.test(e.textContent)) window.__sawNothing = true;
    }).observe(document.querySelector('#list-view'), { subtree: true, childList: true, attributes: true, characterData: true });
  });
  await A.fill('#filters input[name=q]', 'xyzzy');
  await A.waitForFunction((id) => {
    const ls = document.querySelectorAll('#entries li.entry');
    return ls.length === 1 && Number(ls[0].dataset.id) === id;
  }, needle, { timeout: T });
  check(!(await A.evaluate(() => window.__sawNothing)), 'the page never said "nothing matches" while the search was partial');
  check((await rows(A)).length === 1, 'it found the one old match behind the partial page');
  await A.fill('#filters input[name=q]', '');

  check(!A.__errors && !Ph.__errors, 'no script errors on the pages');
  await browser.close();
  admin.close();
  console.log('browser v2: all checks passed');
}

run(main);
