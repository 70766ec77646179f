// browser_richtext.js - the Markdown subset of entry and comment text
// (web/md.js) in headless Chromium: what it renders, and that no script,
// event handler or dangerous URL of the user's gets through, from a
// snapshot or a live push. Run by tests/integration/test_web_ui.py:
//   node browser_richtext.js BASE_URL ADMIN_TOKEN OUT_DIR
'use strict';
const { connect } = require('./wsclient');
const { base, adminToken, outDir, wsBase, T, check, giveUpAfter, launch, newPage, pageErrors,
  signIn, pageWidth, must, run } = require('./browser_util');

giveUpAfter('browser richtext', 120);

/* Each tries to run "window.__xss = N" or to plant a handler or a bad link. */
const PAYLOADS = [
  '<script>window.__xss=1</script>',
  '<img src=x onerror="window.__xss=2">',
  '<svg onload="window.__xss=3"></svg>',
  '[click](javascript:window.__xss=4)',
  '[click](JaVaScRiPt:window.__xss=5)',
  '[click]( javascript:window.__xss=6)',
  '[click](java\tscript:window.__xss=7)',
  '[click](javascript&#58;window.__xss=8)',
  '[click](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9OTwvc2NyaXB0Pg==)',
  '[click](vbscript:msgbox)',
  '[x](https://ok.example/"onmouseover="window.__xss=10)',
  '[<img src=x onerror=window.__xss=11>](https://ok.example/)',
  '**<b onmouseover="window.__xss=12">bold</b>**',
  '`<img src=x onerror=window.__xss=13>`',
  '```\n</code></pre><img src=x onerror=window.__xss=14>\n```',
  'https://example.com/"><script>window.__xss=15</script>',
  'https://example.com/<img/src=x/onerror=window.__xss=16>',
  'javascript:window.__xss=17',
  '@<script>window.__xss=18</script>',
  '#1<img src=x onerror=window.__xss=19>',
  '[a](https://x.example/)[b](javascript:window.__xss=20)',
  '<a href="javascript:window.__xss=21">x</a>',
  '<iframe src="javascript:window.__xss=22"></iframe>',
  '<div style="background:url(javascript:window.__xss=23)">styled</div>',
  '[x](//evil.example/)',
  '[x](/relative/path)',
  '[x](#/entry/1"onclick="window.__xss=24)',
  '<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=25>',
  '&lt;script&gt;window.__xss=26&lt;/script&gt;',
  '![img](https://x.example/a.png" onerror="window.__xss=27)',
  '*[x](javascript:window.__xss=28)*',
  '[x](mailto:a@b.example?subject=<script>window.__xss=29</script>)',
  '<details open ontoggle="window.__xss=30">',
  '<body onload="window.__xss=31">',
  '<form><button formaction="javascript:window.__xss=32">go</button></form>',
  '<input autofocus onfocus="window.__xss=33">',
  '`` ` `` <img src=x onerror=window.__xss=34> ``',
  '[x](https://ok.example/)<!-- <img src=x onerror=window.__xss=35> -->',
  '<object data="javascript:window.__xss=36"></object>',
  '<meta http-equiv="refresh" content="0;url=javascript:window.__xss=37">',
  '[x](\u0001javascript:window.__xss=38)',
  '[x](https:javascript:window.__xss=39)',
  '__proto__ @__proto__ @constructor @toString #0 #-1',
];

const RICH = [
  'First paragraph with **bold**, *em*, _also em_ and `inline <code>`.',
  'Second line, same paragraph.',
  '',
  '- one',
  '- two with [a link](https://example.com/docs?a=1&b=2)',
  '- three',
  '',
  '1. first',
  '2. second',
  '',
  '```js',
  'if (a < b) { alert("<no>"); }',
  '```',
  '',
  'See https://example.org/path_(x). and #ENTRY and @alice and @nobody.',
].join('\n');

async function main() {
  const admin = await connect(`${wsBase}/ws/${adminToken}`);
  const req = (obj) => must(admin, obj);
  const alice = await req({ op: 'createUser', params: { name: 'alice', role: 'member' } });
  const other = (await req({ op: 'createEntry', params: { title: 'An earlier entry', kind: 'fix' } })).entry;
  const rich = (await req({ op: 'createEntry', params: { title: 'Rich text', kind: 'change',
    body: RICH.replace('#ENTRY', `#${other}`) } })).entry;
  const evil = (await req({ op: 'createEntry', params: { title: '<img src=x onerror=window.__xss=99>', kind: 'fix',
    body: PAYLOADS.join('\n\n') } })).entry;
  const half = Math.floor(PAYLOADS.length / 2);
  for (const p of PAYLOADS.slice(0, half)) await req({ op: 'addComment', params: { entry: evil, body: p } });

  const browser = await launch();
  const A = await newPage(browser);
  const dialogs = [];
  A.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await signIn(A, alice.token);

  // ---- what the subset renders ----
  await A.click(`#entries li.entry[data-id="${rich}"] a.title`);
  await A.waitForSelector('#entry .body.md p');
  const r = await A.$eval('#entry .body', (b) => ({
    ps: b.querySelectorAll(':scope > p').length,
    br: b.querySelector(':scope > p').querySelectorAll('br').length,
    strong: [...b.querySelectorAll('strong')].map((n) => n.textContent),
    em: [...b.querySelectorAll('em')].map((n) => n.textContent),
    code: [...b.querySelectorAll('p > code')].map((n) => n.textContent),
    ul: [...b.querySelectorAll('ul > li')].map((n) => n.textContent),
    ol: [...b.querySelectorAll('ol > li')].map((n) => n.textContent),
    pre: b.querySelector('pre > code') && b.querySelector('pre > code').textContent,
    links: [...b.querySelectorAll('a')].map((a) => [a.getAttribute('href'), a.textContent, a.getAttribute('rel')]),
    mentions: [...b.querySelectorAll('.mention')].map((n) => n.textContent),
    last: b.querySelector(':scope > p:last-child').textContent,
  }));
  check(r.ps === 2 && r.br === 1, 'paragraphs, and a line break inside one');
  check(JSON.stringify(r.strong) === '["bold"]' && JSON.stringify(r.em) === '["em","also em"]', 'strong and emphasis');
  check(JSON.stringify(r.code) === '["inline <code>"]', 'inline code keeps "<code>" as text');
  check(JSON.stringify(r.ul) === JSON.stringify(['one', 'two with a link', 'three']) &&
    JSON.stringify(r.ol) === '["first","second"]', 'bulleted and numbered lists');
  check(r.pre === 'if (a < b) { alert("<no>"); }', 'a fenced block is code, verbatim');
  const want = [['https://example.com/docs?a=1&b=2', 'a link'], ['https://example.org/path_(x)', 'https://example.org/path_(x)'],
    [`#/entry/${other}`, `#${other}`]];
  check(JSON.stringify(r.links.map((l) => l.slice(0, 2))) === JSON.stringify(want), `links, a bare URL without its full stop, #N: ${JSON.stringify(r.links)}`);
  check(r.links.slice(0, 2).every((l) => /\bnoopener\b/.test(l[2])), 'outside links have rel="noopener"');
  check(JSON.stringify(r.mentions) === '["@alice"]' && /@nobody\.$/.test(r.last), '@alice is a mention, @nobody (no such user) stays text');
  await A.screenshot({ path: `${outDir}/richtext.png`, fullPage: true });
  // on a phone: the same text, and nothing (the code block, the long URL) wider than the screen
  const Ph = await newPage(browser, { phone: true, mobile: true });
  await signIn(Ph, alice.token);
  await Ph.goto(`${base}/#/entry/${rich}`);
  await Ph.waitForSelector('#entry .body.md pre');
  check(await Ph.$eval('#entry .body', (b) => b.querySelectorAll('strong, em, ul > li, ol > li, pre, a, .mention').length) ===
    await A.$eval('#entry .body', (b) => b.querySelectorAll('strong, em, ul > li, ol > li, pre, a, .mention').length),
  'a phone renders the same elements');
  check(await pageWidth(Ph) <= 390, `nothing is wider than the phone (${await pageWidth(Ph)} px)`);
  await Ph.screenshot({ path: `${outDir}/richtext-phone.png`, fullPage: true });
  await Ph.ctx.close();
  await A.click(`#entry a[href="#/entry/${other}"]`);
  await A.waitForFunction((t) => document.querySelector('#entry h2') && document.querySelector('#entry h2').textContent === t,
    'An earlier entry', { timeout: T });
  check(true, '#N opens entry N');

  // ---- nothing of the payloads gets through ----
  await A.goto(`${base}/#/entry/${evil}`);
  await A.waitForSelector('#conn.conn-on', { timeout: T });
  await A.waitForSelector(`#comments li.comment >> nth=${half - 1}`, { timeout: T });
  for (const p of PAYLOADS.slice(half)) await req({ op: 'addComment', params: { entry: evil, body: p } });
  await A.waitForFunction((n) => document.querySelectorAll('#comments li.comment').length === n, PAYLOADS.length, { timeout: T });
  await A.hover('#entry .body');
  for (const a of await A.$$('#comments .ctext')) await a.hover();
  await new Promise((res) => setTimeout(res, 500));
  const audit = await A.evaluate(() => {
    const allowed = new Set(['P', 'BR', 'UL', 'OL', 'LI', 'PRE', 'CODE', 'STRONG', 'EM', 'A', 'SPAN']);
    const attrs = new Set(['href', 'rel', 'class', 'title', 'start']);
    const bad = [];
    for (const n of document.querySelectorAll('*')) {
      for (const at of n.attributes) if (/^on/i.test(at.name)) bad.push(`${n.tagName} ${at.name}`);
      if (['SCRIPT', 'IFRAME', 'OBJECT', 'EMBED', 'IMG', 'SVG', 'MATH', 'STYLE'].includes(n.tagName.toUpperCase()) &&
          !(n.tagName === 'SCRIPT' && n.parentNode === document.head)) bad.push(n.tagName);
    }
    for (const root of document.querySelectorAll('.md')) {
      for (const n of root.querySelectorAll('*')) {
        if (!allowed.has(n.tagName)) bad.push(`tag ${n.tagName}`);
        for (const at of n.attributes) if (!attrs.has(at.name)) bad.push(`attr ${at.name}`);
        if (n.tagName === 'A') {
          const h = n.getAttribute('href');
          if (!/^(https?:\/\/|mailto:|#\/entry\/\d+$)/.test(h)) bad.push(`href ${h}`);
        }
      }
    }
    return { bad, xss: window.__xss, links: [...document.querySelectorAll('#comments .md a')].map((a) => a.getAttribute('href')) };
  });
  check(audit.bad.length === 0, `no script, handler, foreign tag or attribute, or bad URL in the page (${audit.bad.join(', ')})`);
  check(audit.xss === undefined && dialogs.length === 0, 'no payload ran');
  check(audit.links.includes('https://ok.example/'), `safe links among the payloads still work (${audit.links.length} links)`);
  const texts = await A.$$eval('#comments .ctext', (ns) => ns.map((n) => n.textContent));
  for (const p of PAYLOADS.filter((x) => x.startsWith('<'))) {
    check(texts.includes(p), `raw HTML is shown as the text it is: ${p.slice(0, 40)}`);
  }
  check(texts.includes('[click](javascript:window.__xss=4)'), 'a javascript: link stays text');
  check((await A.textContent('#entry h2')) === '<img src=x onerror=window.__xss=99>', 'the title is text');
  await A.screenshot({ path: `${outDir}/richtext-xss.png` });

  // a body of 32 KiB of unclosed markup renders (each construct closes within md.js's WINDOW)
  const slow = (await req({ op: 'createEntry', params: { title: 'Unclosed', kind: 'fix',
    body: '**a `b [c _d '.repeat(32768 / 12).slice(0, 32768) } })).entry;
  await A.goto(`${base}/#/entry/${slow}`);
  await A.waitForSelector('#conn.conn-on', { timeout: T });
  await A.waitForSelector('#entry .body.md p', { timeout: T });
  const len = await A.$eval('#entry .body', (b) => b.textContent.length);
  check(len > 25000, `a 32 KiB body of unclosed markup renders (${len} characters of text)`);
  check(pageErrors() === 0, 'no script errors on the page');
  await browser.close();
  admin.close();
  console.log('browser richtext: all checks passed');
}

run(main);
