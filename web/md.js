/*
 * md.js - the Markdown subset of entry and comment text, rendered straight
 * into DOM nodes. Loaded before app.js; exports window.CLMarkdown.
 *
 * What it renders:
 *   blocks:  paragraphs (a blank line between them; a single newline is a
 *            line break), "- "/"* "/"+ " and "1. " lists, ``` fenced code
 *   inline:  `code`, **strong**, *emphasis* / _emphasis_, [text](url),
 *            bare http(s):// URLs, #123 (a link to entry 123), @name (a
 *            mention, when such a user exists)
 * Everything else is text.
 *
 * Why it is safe: it never parses HTML and never assigns markup. Every node
 * is made with createElement from a fixed list of tags (p, br, ul, ol, li,
 * pre, code, strong, em, a, span), text goes in with createTextNode, and
 * the only attributes ever set are a link's href (after the URL parser says
 * its scheme is http:, https: or mailto:, else the link stays text), rel,
 * class and title. So no tag, attribute or event handler of the user's can
 * reach the page, whatever the input. tests/node/browser_v2.js throws a
 * list of XSS payloads at it.
 */
'use strict';
(function () {
  const SAFE_SCHEMES = new Set(['http:', 'https:', 'mailto:']);
  const MAX_DEPTH = 4;          // emphasis inside emphasis inside link text…
  /* An inline construct opens and closes within this many characters, so a
   * line of 32 KiB of unclosed "**" costs a bounded scan per position. */
  const WINDOW = 1200;
  const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]{0,30})\s*$/;

  function safeHref(raw) {
    const s = String(raw).trim();
    // only absolute URLs with an allowed scheme; relative ones would resolve
    // against this page and are refused too
    if (!/^(https?:\/\/|mailto:)/i.test(s)) return null;
    let u;
    try { u = new URL(s); } catch (e) { return null; }
    return SAFE_SCHEMES.has(u.protocol) ? u.href : null;
  }

  function link(href, kids) {
    const a = document.createElement('a');
    a.setAttribute('href', href);
    a.setAttribute('rel', 'noopener noreferrer nofollow');
    for (const k of kids) a.append(k);
    return a;
  }

  /* A bare URL ends before trailing punctuation and an unbalanced ")". */
  function trimUrl(u) {
    let s = u.replace(/[.,;:!?'"*_]+$/, '');
    while (s.endsWith(')') && (s.match(/\(/g) || []).length < (s.match(/\)/g) || []).length) {
      s = s.slice(0, -1);
    }
    return s;
  }

  /*
   * Inline text to nodes. One left-to-right scan; at each position the
   * first construct that matches wins, else the character is text.
   */
  function inline(text, opt, depth, out) {
    let buf = '';
    const flush = () => { if (buf) { out.push(document.createTextNode(buf)); buf = ''; } };
    let i = 0;
    while (i < text.length) {
      const rest = text.slice(i, i + WINDOW);
      const prev = i > 0 ? text[i - 1] : '';
      let m;
      if (rest[0] === '`' && (m = /^(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/.exec(rest))) {
        flush();
        const c = document.createElement('code');
        c.textContent = m[2];
        out.push(c);
        i += m[0].length;
        continue;
      }
      if (depth < MAX_DEPTH && (m = /^(\*\*|__)(?=\S)([\s\S]*?\S)\1/.exec(rest)) &&
          !(m[1] === '__' && /\w/.test(prev))) {
        flush();
        const s = document.createElement('strong');
        s.append(...inline(m[2], opt, depth + 1, []));
        out.push(s);
        i += m[0].length;
        continue;
      }
      if (depth < MAX_DEPTH && (m = /^([*_])(?=[^\s*_])([\s\S]*?[^\s*_])\1(?![*_\w])/.exec(rest)) &&
          !(m[1] === '_' && /\w/.test(prev))) {
        flush();
        const e = document.createElement('em');
        e.append(...inline(m[2], opt, depth + 1, []));
        out.push(e);
        i += m[0].length;
        continue;
      }
      if (rest[0] === '[' && (m = /^\[([^\[\]]{1,500})\]\(([^()\s]{1,600})\)/.exec(rest))) {
        const href = safeHref(m[2]);
        flush();
        if (href && depth < MAX_DEPTH) {
          // link text keeps emphasis and code, but holds no further links
          out.push(link(href, inline(m[1], { ...opt, noLinks: true }, depth + 1, [])));
        } else {
          out.push(document.createTextNode(m[0]));
        }
        i += m[0].length;
        continue;
      }
      if (!opt.noLinks && (rest[0] === 'h' || rest[0] === 'H') && !/\w/.test(prev) &&
          (m = /^https?:\/\/[^\s<>"'`]+/i.exec(rest))) {
        const u = trimUrl(m[0]);
        const href = safeHref(u);
        if (href && u.length > 8) {
          flush();
          out.push(link(href, [document.createTextNode(u)]));
          i += u.length;
          continue;
        }
      }
      if (!opt.noLinks && rest[0] === '#' && !/[\w&]/.test(prev) && (m = /^#([1-9][0-9]{0,15})(?!\w)/.exec(rest))) {
        flush();
        const a = document.createElement('a');
        a.setAttribute('href', `#/entry/${m[1]}`);
        a.className = 'ref';
        a.textContent = m[0];
        out.push(a);
        i += m[0].length;
        continue;
      }
      if (rest[0] === '@' && !/[\w.]/.test(prev) && (m = /^@([A-Za-z0-9._-]{1,64})/.exec(rest))) {
        const name = m[1].replace(/[.\-_]+$/, '');
        if (opt.isUser && opt.isUser(name)) {
          flush();
          const s = document.createElement('span');
          s.className = 'mention';
          s.title = `user ${name}`;
          s.textContent = '@' + name;
          out.push(s);
          i += 1 + name.length;
          continue;
        }
      }
      buf += rest[0];
      i++;
    }
    flush();
    return out;
  }

  /* A paragraph's lines: inline content with a <br> at each newline. */
  function para(lines, opt) {
    const p = document.createElement('p');
    lines.forEach((l, k) => {
      if (k) p.append(document.createElement('br'));
      p.append(...inline(l, opt, 0, []));
    });
    return p;
  }

  const ITEM = /^ {0,3}([-*+]|\d{1,9}[.)]) +(.*)$/;

  function render(text, opt) {
    const o = opt || {};
    const frag = document.createDocumentFragment();
    const lines = String(text || '').replace(/\r\n?/g, '\n').split('\n');
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if ((m = FENCE.exec(line))) {
        // fenced code, to a closing fence of the same character, at least
        // as long, or to the end
        const fence = m[1];
        const closes = (l) => {
          const t = l.trim();
          return t.length >= fence.length && t === fence[0].repeat(t.length);
        };
        const body = [];
        i++;
        while (i < lines.length && !closes(lines[i])) {
          body.push(lines[i]);
          i++;
        }
        i++;
        const pre = document.createElement('pre');
        const code = document.createElement('code');
        if (m[2]) code.className = 'lang-' + m[2].replace(/[^\w+-]/g, '');
        code.textContent = body.join('\n');
        pre.append(code);
        frag.append(pre);
        continue;
      }
      if ((m = ITEM.exec(line))) {
        const ordered = /\d/.test(m[1][0]);
        const list = document.createElement(ordered ? 'ol' : 'ul');
        if (ordered && parseInt(m[1], 10) !== 1) list.setAttribute('start', String(parseInt(m[1], 10)));
        while (i < lines.length && (m = ITEM.exec(lines[i])) && /\d/.test(m[1][0]) === ordered) {
          const parts = [m[2]];
          i++;
          // an indented line continues the item
          while (i < lines.length && /^ {2,}\S/.test(lines[i]) && !ITEM.exec(lines[i])) {
            parts.push(lines[i].trim());
            i++;
          }
          const li = document.createElement('li');
          parts.forEach((l, k) => {
            if (k) li.append(document.createElement('br'));
            li.append(...inline(l, o, 0, []));
          });
          list.append(li);
        }
        frag.append(list);
        continue;
      }
      if (line.trim() === '') { i++; continue; }
      const block = [];
      do {
        block.push(lines[i]);
        i++;
      } while (i < lines.length && lines[i].trim() !== '' && !ITEM.exec(lines[i]) &&
               !FENCE.test(lines[i]));
      frag.append(para(block, o));
    }
    return frag;
  }

  window.CLMarkdown = { render, safeHref };
}());
