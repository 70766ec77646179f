// client_live.js - query, command and subscribe with Node's `ws`:
//   node client_live.js WSS_BASE TOKEN
// A writer and a reader connect; the reader takes a snapshot, subscribes
// from its position, the writer creates an entry and comments on it; the
// reader must see exactly those pushes, in order, carrying the new state.
'use strict';
const { connect } = require('./wsclient');

const [base, token] = process.argv.slice(2);

function check(cond, what) {
  if (!cond) { console.error(`FAIL - ${what}`); process.exit(1); }
  console.log(`ok - ${what}`);
}

function waitFor(pred, ms = 10000) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const tick = () => {
      if (pred()) return resolve();
      if (performance.now() - t0 > ms) return reject(new Error('timeout'));
      setTimeout(tick, 10);
    };
    tick();
  });
}

function events(pushes) {
  const out = [];
  for (const p of pushes) {
    if (p.op === 'event') out.push(p);
    else if (p.op === 'events') out.push(...p.events);
  }
  return out;
}

async function main() {
  const reader = await connect(`${base}/ws/${token}`);
  const writer = await connect(`${base}/route/ws/${token}`);
  const snap = await reader.request({ op: 'query', name: 'getChangelogEntries', params: {} });
  check(snap.ok === true && typeof snap.at === 'number' && typeof snap.epoch === 'string',
    'query reply has ok, epoch and at');
  const sub = await reader.request({ op: 'subscribe', since: snap.at, epoch: snap.epoch });
  check(sub.ok && sub.recovered === true && sub.since === snap.at, 'subscribe recovered');
  const c = await writer.request({ op: 'createEntry', cmd_id: `node-${crypto.randomUUID()}`,
    params: { title: 'from node', body: 'written by ws', kind: 'feature' } });
  check(c.ok === true && typeof c.seq === 'number', 'createEntry ok with seq');
  const entry = c.entry;
  const k = await writer.request({ op: 'addComment', params: { entry, body: 'first!' } });
  check(k.ok === true && k.seq === c.seq + 1, 'addComment ok, next seq');
  await waitFor(() => events(reader.pushes).length >= 2);
  const ev = events(reader.pushes);
  check(ev[0].seq === c.seq && ev[0].event.type === 'entry.created', 'push 1 is entry.created');
  check(ev[0].entry && ev[0].entry.title === 'from node', 'push 1 carries the entry');
  check(ev[1].seq === k.seq && ev[1].event.type === 'comment.added', 'push 2 is comment.added');
  check(ev[1].comment && ev[1].comment.body === 'first!', 'push 2 carries the comment');
  const bad = await writer.request({ op: 'nonsense' });
  check(bad.ok === false && bad.error.code === 'bad_request', 'unknown op: bad_request');
  const pong = await writer.request({ op: 'ping' });
  check(pong.ok && pong.pong === true && pong.at === k.seq, 'ping answers with at');
  reader.close();
  writer.close();
}

main().catch((e) => { console.error(e); process.exit(1); });
