// a11y_audit.js - what the browser tests check for accessibility, as a
// function Playwright runs in the page (page.evaluate(audit)): WCAG 2.1
// contrast computed from the computed colours (text and badges 4.5:1,
// input borders 3:1) and an accessible name for every shown control; and
// headerLine, the measure of the one-line phone header.
// Shared by browser_a11y.js and browser_admin.js.
'use strict';

/* Runs in the page: every contrast problem on it, and the lowest ratios. */
function audit() {
  const parse = (s) => {
    const m = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)/.exec(s || '');
    return m ? { r: +m[1], g: +m[2], b: +m[3], a: m[4] === undefined ? 1 : +m[4] } : null;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ratio = (x, y) => { const [a, b] = [lum(x), lum(y)].sort((p, q) => q - p); return (a + 0.05) / (b + 0.05); };
  const bgOf = (n) => {
    for (let x = n; x; x = x.parentElement) {
      const c = parse(getComputedStyle(x).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return parse(getComputedStyle(document.documentElement).backgroundColor) || { r: 255, g: 255, b: 255, a: 1 };
  };
  const shown = (n) => n.getClientRects().length > 0 && getComputedStyle(n).visibility !== 'hidden';
  const bad = [];
  const low = { text: 99, badge: 99, border: 99 };
  const text = (n, kind, min) => {
    if (!shown(n) || !n.textContent.trim()) return;
    const r = ratio(parse(getComputedStyle(n).color), bgOf(n));
    low[kind] = Math.min(low[kind], r);
    if (r < min) bad.push(`${kind} "${n.textContent.trim().slice(0, 30)}" (${n.className}) ${r.toFixed(2)}:1`);
  };
  for (const n of document.querySelectorAll('.badge')) text(n, 'badge', 4.5);
  for (const n of document.querySelectorAll('.meta, .muted, .count, .counter, .filters label, .me, .conn, a, button, h1, h2, h3, p, label, time, .field-error, .toast span, .uname, .tlabel, .you'))
    text(n, 'text', 4.5);
  for (const n of document.querySelectorAll('input:not([type=checkbox]), select, textarea')) {
    if (!shown(n)) continue;
    const cs = getComputedStyle(n);
    const line = parse(cs.borderTopColor);
    const r = Math.min(ratio(line, bgOf(n)), ratio(line, bgOf(n.parentElement)));
    low.border = Math.min(low.border, r);
    if (r < 3) bad.push(`border of ${n.name || n.tagName} ${r.toFixed(2)}:1`);
  }
  // every control has an accessible name
  for (const n of document.querySelectorAll('input, select, textarea, button')) {
    if (!shown(n)) continue;
    const name = n.getAttribute('aria-label') || (n.labels && [...n.labels].map((l) => l.textContent).join(' ').trim()) ||
      (n.tagName === 'BUTTON' && n.textContent.trim());
    if (!name) bad.push(`no accessible name: ${n.outerHTML.slice(0, 80)}`);
  }
  return { bad, low, bg: lum(parse(getComputedStyle(document.body).backgroundColor)) };
}

/* Runs in the page: the header's shown children, how far their middles
 * spread (one line: a few px), its height, and the page's scroll width. */
function headerLine() {
  const bar = document.querySelector('header.bar');
  const kids = [...bar.children].filter((k) => k.getClientRects().length);
  const tops = kids.map((k) => k.getBoundingClientRect()).map((r) => r.top + r.height / 2);
  return { height: bar.getBoundingClientRect().height, spread: Math.max(...tops) - Math.min(...tops),
    n: kids.length, width: document.documentElement.scrollWidth };
}

module.exports = { audit, headerLine };
