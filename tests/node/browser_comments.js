// browser_comments.js - editing and deleting comments in the web UI (issue
// 18): the author edits and deletes their own comments, an admin anyone's,
// nobody else sees the buttons; a deletion asks first and leaves a
// tombstone whose replies stay; both reach the other people live, and a
// reload shows the same. Run by tests/integration/test_web_ui.py:
//   node browser_comments.js BASE_URL ADMIN_TOKEN OUT_DIR
'use strict';
const { connect } = require('./wsclient');
const { base, adminToken, outDir, wsBase, T, check, giveUpAfter, launch, newPage, pageErrors,
  signIn, must, run } = require('./browser_util');

giveUpAfter('browser comments', 120);

async function main() {
  const admin = await connect(`${wsBase}/ws/${adminToken}`);
  const req = must;
  const alice = await req(admin, { op: 'createUser', params: { name: 'alice' } });
  const bob = await req(admin, { op: 'createUser', params: { name: 'bob' } });
  const aws = await connect(`${wsBase}/ws/${alice.token}`);
  const bws = await connect(`${wsBase}/ws/${bob.token}`);
  const entry = (await req(aws, { op: 'createEntry', params: { title: 'Search is slow', kind: 'fix' } })).entry;
  const c1 = (await req(aws, { op: 'addComment', params: { entry, body: 'First take: the index is missing.' } })).comment;
  const c2 = (await req(bws, { op: 'addComment', params: { entry, parent: c1, body: "Bob's reply: it is there." } })).comment;
  const c3 = (await req(aws, { op: 'addComment', params: { entry, parent: c2, body: 'Alice answers Bob.' } })).comment;
  const c4 = (await req(bws, { op: 'addComment', params: { entry, body: 'A second thought from Bob.' } })).comment;
  const getC = async (id) => {
    const r = (await req(admin, { op: 'query', name: 'getEntry', params: { entry } })).result;
    const all = [];
    const walk = (cs) => cs.forEach((c) => { all.push(c); walk(c.replies); });
    walk(r.comments);
    return all.find((c) => c.id === id);
  };

  const browser = await launch();
  const open = async (token, phone) => {
    const page = await signIn(await newPage(browser, { phone }), token);
    await page.goto(`${base}/#/entry/${entry}`);
    await page.waitForSelector(`#comments li[data-cid="${c4}"]`, { timeout: T });
    await page.evaluate(() => { window.__noReload = 1; });
    return page;
  };
  const li = (id) => `#comments li[data-cid="${id}"]`;
  const A = await open(alice.token);
  const B = await open(bob.token, true);
  const C = await open(adminToken);

  const buttons = async (page, id) => page.$$eval(`${li(id)} > button`, (bs) => bs.map((b) => b.className.replace('ghost ', '')));
  check(JSON.stringify(await buttons(A, c1)) === '["reply","cedit","cdelete"]', 'alice can edit and delete her own comment');
  check(JSON.stringify(await buttons(A, c2)) === '["reply"]', "alice cannot touch bob's");
  check(JSON.stringify(await buttons(C, c2)) === '["reply","cedit","cdelete"]', "an admin can edit and delete anyone's");
  check((await A.getAttribute(`${li(c1)} > button.cedit`, 'aria-label')) === 'Edit your comment' &&
    (await C.getAttribute(`${li(c2)} > button.cdelete`, 'aria-label')) === "Delete bob's comment", 'the buttons say whose comment they change');

  // edit: Escape discards, Save sends, everyone sees it live
  await A.click(`${li(c1)} > button.cedit`);
  check((await A.inputValue(`${li(c1)} > .cbody form textarea`)) === 'First take: the index is missing.', 'the edit form starts from the text');
  await A.fill(`${li(c1)} > .cbody form textarea`, 'never saved');
  await A.keyboard.press('Escape');
  check(!(await A.$(`${li(c1)} > .cbody form`)) && /the index is missing/.test(await A.textContent(`${li(c1)} > .cbody`)), 'Escape discards the edit');
  await A.click(`${li(c1)} > button.cedit`);
  await A.fill(`${li(c1)} > .cbody form textarea`, 'x'.repeat(16385));
  await A.click(`${li(c1)} > .cbody form button[type=submit]`);
  await A.waitForSelector(`${li(c1)} .field-error:not([hidden])`, { timeout: T });
  check(/too long/.test(await A.textContent(`${li(c1)} .field-error`)), 'a too-long edit is refused inline');
  await A.fill(`${li(c1)} > .cbody form textarea`, 'First take, **corrected**: the index is stale.');
  await A.click(`${li(c1)} > .cbody form button[type=submit]`);
  await B.waitForSelector(`${li(c1)} > .cbody strong:has-text("corrected")`, { timeout: T });
  check(/edited/.test(await B.textContent(`${li(c1)} > .cbody .meta`)), 'bob sees the edit live, marked "edited"');
  await A.waitForSelector(`${li(c1)} > .cbody strong:has-text("corrected")`, { timeout: T });
  const s1 = await getC(c1);
  check(s1.body === 'First take, **corrected**: the index is stale.' && typeof s1.edited === 'string', 'the server holds the new text and the edit time');

  // delete: asks first, leaves a tombstone, replies stay
  await B.click(`${li(c2)} > button.cdelete`);
  await B.waitForSelector(`${li(c2)} > .confirm`);
  await B.keyboard.press('Escape');
  check(!(await B.$(`${li(c2)} > .confirm`)) && !(await getC(c2)).deleted, 'Escape at "Delete this comment?" keeps it');
  await B.click(`${li(c2)} > button.cdelete`);
  await B.click(`${li(c2)} > .confirm .confirm-yes`);
  await A.waitForSelector(`${li(c2)} > .cbody .tombstone`, { timeout: T });
  check((await A.textContent(`${li(c2)} > .cbody .tombstone`)) === 'This comment was deleted.' &&
    !/it is there/.test(await A.textContent(li(c2) + ' > .cbody')), 'alice sees a tombstone live, without the text');
  check(!!(await A.$(`${li(c2)} > ul.thread > ${li(c3).slice(10)}`)) && /Alice answers Bob/.test(await A.textContent(li(c3))),
    "the tombstone's reply stays in its place");
  check(JSON.stringify(await buttons(A, c2)) === '[]' && JSON.stringify(await buttons(C, c2)) === '[]', 'a tombstone has no buttons');
  await B.waitForSelector(`${li(c2)} > .cbody .tombstone`, { timeout: T });
  await B.screenshot({ path: `${outDir}/comments-tombstone-phone.png`, fullPage: true });
  // an admin deletes alice's other comment
  await C.click(`${li(c3)} > button.cdelete`);
  await C.click(`${li(c3)} > .confirm .confirm-yes`);
  await A.waitForSelector(`${li(c3)} > .cbody .tombstone`, { timeout: T });
  check(true, "an admin's deletion reaches alice live");
  check(await A.evaluate(() => window.__noReload === 1) && await B.evaluate(() => window.__noReload === 1), 'nobody reloaded');

  // the server refuses what the page does not offer
  const r1 = await bws.request({ op: 'editComment', params: { comment: c1, body: 'bob was here' } });
  check(!r1.ok && r1.error.code === 'forbidden', "bob editing alice's comment through the socket: forbidden");
  const r2 = await aws.request({ op: 'editComment', params: { comment: c3, body: 'undelete?' } });
  check(!r2.ok && r2.error.code === 'bad_request', 'editing a deleted comment: bad_request');
  const r3 = await aws.request({ op: 'deleteComment', params: { comment: 9999 } });
  check(!r3.ok && r3.error.code === 'not_found', 'deleting a missing comment: not_found');
  const hist = (await req(admin, { op: 'query', name: 'getEntryHistory', params: { entry } })).result.events.map((e) => e.type);
  check(JSON.stringify(hist.slice(-3)) === '["comment.edited","comment.deleted","comment.deleted"]', `the history lists them: ${hist}`);

  // a fresh page shows the same from the snapshot
  await A.reload();
  await A.waitForSelector('#conn.conn-on', { timeout: T });
  await A.waitForSelector(`${li(c4)}`, { timeout: T });
  check(!!(await A.$(`${li(c2)} > .cbody .tombstone`)) && !!(await A.$(`${li(c3)} > .cbody .tombstone`)) &&
    /edited/.test(await A.textContent(`${li(c1)} > .cbody .meta`)), 'after a reload: the same tombstones and the edit mark');
  await A.screenshot({ path: `${outDir}/comments-edited.png`, fullPage: true });
  check(pageErrors() === 0, 'no script errors on the pages');
  await browser.close();
  admin.close(); aws.close(); bws.close();
  console.log('browser comments: all checks passed');
}

run(main);
