// browser_util.js - what the browser tests (browser_*.js) share: their
// command line (BASE_URL ADMIN_TOKEN OUT_DIR), check(), a time limit,
// Debian's Chromium launched headless, a page in a fresh browser context
// (desktop or 390x844 phone, light or dark, en-GB in UTC) whose script
// errors are counted, signing a page in with a token, the page's laid out
// width, and requests over a WebSocket (tests/node/wsclient.js) that wait
// out the rate limit.
// a11y_audit.js holds the in-page accessibility measures.
'use strict';
const { chromium } = require('playwright-core');

const [base, adminToken, outDir] = process.argv.slice(2);
const wsBase = (base || '').replace(/^http/, 'ws');
const T = 15000;
const t0 = Date.now();

/* One check: throws on failure (the script then exits non-zero), else
 * prints "ok - what" (with the seconds since the start when CL_TIMES is set). */
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}${process.env.CL_TIMES ? ` (${((Date.now() - t0) / 1000).toFixed(1)}s)` : ''}`);
}

/* Exit non-zero after SECONDS, whatever happens. */
function giveUpAfter(name, seconds) {
  setTimeout(() => { console.error(`${name}: gave up after ${seconds} s`); process.exit(1); },
    seconds * 1000).unref();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

let errors = 0;
/* Script errors on every page newPage() made. */
const pageErrors = () => errors;

/* A page in a new browser context. o: phone (390x844, else o.width or 1100
 * x 800), mobile (isMobile and touch), dark, tz (else UTC), permissions,
 * init ([fn, arg] for addInitScript). The page's script errors are logged
 * and counted, in pageErrors() and on page.__errors. */
async function newPage(browser, o = {}) {
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'en-GB',
    timezoneId: o.tz || 'UTC',
    viewport: o.phone ? { width: 390, height: 844 } : { width: o.width || 1100, height: 800 },
    isMobile: !!o.mobile, hasTouch: !!o.mobile, colorScheme: o.dark ? 'dark' : 'light',
    permissions: o.permissions || [] });
  if (o.init) await ctx.addInitScript(...o.init);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => {
    console.log(`page error: ${e.stack || e.message}`);
    errors++;
    page.__errors = (page.__errors || 0) + 1;
  });
  page.ctx = ctx;
  return page;
}

/* Open URL (default: the page signed in with TOKEN) and wait until it is connected. */
async function signIn(page, token, url) {
  await page.goto(url || `${base}/#token=${token}`);
  await page.waitForSelector('#conn.conn-on', { timeout: T });
  return page;
}

/* How wide the page lays out, in CSS px (a phone's 390 when nothing overflows). */
const pageWidth = (page) => page.evaluate(() => document.documentElement.scrollWidth);

/* A request on CONN; waits and retries while the per-connection rate
 * limit answers. The reply, whatever it is. */
async function ask(conn, obj) {
  for (;;) {
    const r = await conn.request(obj);
    if (r.ok || !r.error || r.error.code !== 'rate_limited') return r;
    await sleep(100);
  }
}

/* ask(), and throw unless the reply is ok. */
async function must(conn, obj) {
  const r = await ask(conn, obj);
  if (!r.ok) throw new Error(`${JSON.stringify(obj).slice(0, 200)}: ${JSON.stringify(r)}`);
  return r;
}

/* Run MAIN; on an error print it and exit 1. */
function run(main) {
  main().catch((e) => { console.error(e.stack || String(e)); process.exit(1); });
}

module.exports = { base, adminToken, outDir, wsBase, T, check, giveUpAfter, sleep, launch,
  newPage, pageErrors, signIn, pageWidth, ask, must, run };
