// client_auth.js - handshake auth seen by Node's `ws` client:
//   node client_auth.js WSS_BASE ADMIN_TOKEN REVOKED_TOKEN
// WSS_BASE is e.g. wss://127.0.0.1:8443. Prints one "ok - ..." line per
// check and exits non-zero on the first failure.
'use strict';
const WebSocket = require('ws');

const [base, token, revoked] = process.argv.slice(2);

function attempt(url, opts = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { rejectUnauthorized: false, ...opts });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy(); });
    ws.on('error', () => resolve(-1));
  });
}

function check(cond, what) {
  if (!cond) { console.error(`FAIL - ${what}`); process.exit(1); }
  console.log(`ok - ${what}`);
}

async function main() {
  check(await attempt(`${base}/ws/`) === 401, 'no token: 401');
  check(await attempt(`${base}/ws/clg_not_a_real_token`) === 403, 'unknown token: 403');
  check(await attempt(`${base}/ws/${revoked}`) === 403, 'revoked token: 403');
  check(await attempt(`${base}/elsewhere/${token}`) === 404, 'not a /ws/ path: 404');
  check(await attempt(`${base}/ws/${token}`) === 101, 'token in the path: 101');
  check(await attempt(`${base}/route/ws/${token}`) === 101, '/route/ws/<token>: 101');
  check(await attempt(`${base}/ws`, { headers: { Authorization: `Bearer ${token}` } }) === 101,
    'Authorization: Bearer: 101');
  check(await attempt(`${base}/ws`, { headers: { Authorization: 'Bearer clg_nope' } }) === 403,
    'bad Bearer token: 403');
}

main().catch((e) => { console.error(e); process.exit(1); });
