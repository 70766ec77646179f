// client_seed.js - the seed page's request, verbatim, over Node's `ws`:
//   node client_seed.js WSS_URL
// Prints the reply text (the bare entries array) on stdout.
'use strict';
const WebSocket = require('ws');

const [url] = process.argv.slice(2);
const ws = new WebSocket(url, { rejectUnauthorized: false });
const timer = setTimeout(() => { console.error('timeout'); process.exit(1); }, 10000);
ws.on('open', () => ws.send(JSON.stringify(
  { service: 'mysql', db: 'lazul_changelog', stored_query_name: 'getChangelogEntries' })));
ws.on('message', (data) => {
  process.stdout.write(data.toString() + '\n');
  clearTimeout(timer);
  ws.close();
});
ws.on('unexpected-response', (req, res) => { console.error(`HTTP ${res.statusCode}`); process.exit(1); });
ws.on('error', (e) => { console.error(e.message); process.exit(1); });
