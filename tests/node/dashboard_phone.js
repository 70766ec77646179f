// dashboard_phone.js - the PHP dashboard (tools/dashboard) on a 390x844
// phone in headless Chromium: every page declares a mobile viewport and
// lays out at the phone's width (nothing wider than the screen, no zoomed
// out desktop page), list rows and threads included. Run by
// tests/integration/test_dashboard_php.py:
//   node dashboard_phone.js BASE_URL ENTRY_ID OUT_DIR NAME
'use strict';
const { check, giveUpAfter, launch, run } = require('./browser_util');

const [base, entryId, outDir, name] = process.argv.slice(2);

giveUpAfter('dashboard phone', 60);

async function main() {
  const browser = await launch();
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true,
    hasTouch: true, deviceScaleFactor: 2 });
  const page = await ctx.newPage();
  for (const [path, shot] of [['index.php', 'list'], [`entry.php?id=${entryId}`, 'entry'],
    ['entry.php?id=999999', 'missing']]) {
    await page.goto(`${base}/${path}`);
    const m = await page.evaluate(() => {
      const v = document.querySelector('meta[name=viewport]');
      return { viewport: v ? v.content : null, inner: window.innerWidth,
        scroll: document.documentElement.scrollWidth,
        font: parseFloat(getComputedStyle(document.body).fontSize) };
    });
    check(/width=device-width/.test(m.viewport || ''), `${path} declares a mobile viewport`);
    check(m.inner === 390, `${path} lays out at the phone's 390 px (got ${m.inner})`);
    check(m.scroll <= 390, `${path} is no wider than the screen (${m.scroll} px)`);
    check(m.font >= 14, `${path} text is readable without zooming (${m.font} px)`);
    await page.screenshot({ path: `${outDir}/dashboard-${name}-${shot}-phone.png`, fullPage: true });
  }
  const rows = await page.goto(`${base}/index.php`).then(() =>
    page.$$eval('tr.entry', (rs) => rs.map((r) => r.getBoundingClientRect().width)));
  check(rows.length > 0 && rows.every((w) => w <= 390), 'list rows fit the phone');
  await browser.close();
  console.log('dashboard phone: all checks passed');
}

run(main);
