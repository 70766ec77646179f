// wsclient.js - a tiny request/reply helper over the `ws` package, shared by
// the Node test scripts. Certificates are self-signed in tests.
'use strict';
const WebSocket = require('ws');

function connect(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { rejectUnauthorized: false, ...opts });
    const pending = new Map();
    const pushes = [];
    let nextId = 1;
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.id !== undefined && pending.has(msg.id)) {
        pending.get(msg.id)(msg);
        pending.delete(msg.id);
      } else {
        pushes.push(msg);
      }
    });
    ws.on('open', () => resolve({
      ws,
      pushes,
      request(obj) {
        const id = nextId++;
        return new Promise((res) => { pending.set(id, res); ws.send(JSON.stringify({ id, ...obj })); });
      },
      close() { ws.close(); },
    }));
    ws.on('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.on('error', reject);
  });
}

module.exports = { connect };
