// ws_broadcast_peer.js - the Node.js fan-out peer for `make bench`.
//
// The simplest honest broadcast server on npm `ws` over TLS
// (https.createServer with changelogd's own self-signed cert), in memory,
// no durability: it accepts createEntry, assigns a gapless seq, acks
// {"id","ok":true,"seq","entry"} and sends every subscriber the same push
// shape changelogd sends ({"op":"event","seq":N,"event":{…},"entry":{…}},
// serialised once, key order as changelogd's), so one client
// (bin/changelog-bench) drives both. subscribe (no since) answers
// {"ok":true,"recovered":false,"since":head,"head":head}; ping answers pong.
// Anything else is a bad_request. Usage:
//   node ws_broadcast_peer.js PORT CERT.pem KEY.pem   (prints "ready PORT")
'use strict';
const path = require('path');
const fs = require('fs');
const https = require('https');
const WebSocket = require(path.join(__dirname, '..', '..', 'node', 'node_modules', 'ws'));

const [port, cert, key] = process.argv.slice(2);
if (!port || !cert || !key) {
  console.error('usage: ws_broadcast_peer.js PORT CERT KEY');
  process.exit(2);
}
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
const wss = new WebSocket.Server({ server, maxPayload: 64 * 1024 });
const subscribers = new Set();
const epoch = 'e'.repeat(32);
let seq = 0;

function reply(ws, id, body) {
  const o = id === undefined ? { ok: body.ok } : { id, ok: body.ok };
  ws.send(JSON.stringify(Object.assign(o, body)));
}

wss.on('connection', (ws, req) => {
  if (!/\/ws\/[^/]+$/.test(req.url)) { ws.close(1008, 'no token'); return; }
  ws.on('message', (data) => {
    let m;
    try { m = JSON.parse(data); } catch (e) { reply(ws, undefined, { ok: false, error: { code: 'bad_request', message: 'bad JSON' } }); return; }
    const op = m.op === 'command' ? m.name : m.op;
    if (op === 'createEntry') {
      const p = m.params || {};
      if (typeof p.title !== 'string' || !p.title) { reply(ws, m.id, { ok: false, error: { code: 'bad_request', message: 'title' } }); return; }
      seq += 1;
      const ts = new Date().toISOString();
      const entry = { id: seq, title: p.title, body: p.body || '', kind: p.kind || 'fix', status: 'open',
        author: 'admin', author_id: 1, created: ts, updated: ts, version: 1, comments: 0, last_activity: ts };
      reply(ws, m.id, { ok: true, seq, entry: seq });
      const push = JSON.stringify({ op: 'event', seq,
        event: { seq, type: 'entry.created', v: 1, ts, actor: 1, entry: seq,
          data: { title: p.title, body: entry.body, kind: entry.kind } }, entry });
      for (const s of subscribers) s.send(push);
    } else if (op === 'subscribe') {
      subscribers.add(ws);
      reply(ws, m.id, { ok: true, epoch, recovered: false, since: seq, head: seq });
    } else if (op === 'unsubscribe') {
      subscribers.delete(ws);
      reply(ws, m.id, { ok: true });
    } else if (op === 'ping') {
      reply(ws, m.id, { ok: true, pong: true, at: seq });
    } else {
      reply(ws, m.id, { ok: false, error: { code: 'bad_request', message: 'unknown op' } });
    }
  });
  ws.on('close', () => subscribers.delete(ws));
  ws.on('error', () => subscribers.delete(ws));
});
server.listen(Number(port), '127.0.0.1', () => console.log('ready ' + port));
process.on('SIGTERM', () => process.exit(0));
