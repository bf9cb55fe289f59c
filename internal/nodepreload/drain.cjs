'use strict';
// tend's drain for Node cluster workers, loaded with NODE_OPTIONS=--require
// in every worker tend runs as the cluster primary.
//
// When tend retires a worker (reload, scale down, stop) it sends Node's
// cluster "disconnect", and the worker closes its servers. Since Node 19
// http.Server.close() also destroys every idle keep-alive connection at
// once; a client that is writing its next request on one at that moment
// gets a reset and no answer. Here, while the worker disconnects:
//
//   - every response carries "Connection: close", so a client in use moves
//     to a new connection (which tend hands to a serving worker) after the
//     answer it is waiting for;
//   - idle connections are closed only after GRACE_MS (1 s unless tend
//     says less), so only a client that stayed idle that long can meet
//     the close.
//
// The server stops accepting at once as before, and the worker disconnects
// as soon as its last connection ends. Outside a disconnect nothing changes:
// no hook runs per request until tend asks the worker to leave.
const dc = require('node:diagnostics_channel');
const http = require('node:http');
const https = require('node:https');

// tend sets TEND_DRAIN_MS: a second, or half of kill_timeout if shorter.
const GRACE_MS = /^\d+$/.test(process.env.TEND_DRAIN_MS || '') ? Number(process.env.TEND_DRAIN_MS) : 1000;
let draining = false;
let graceEnd = 0;

// Node's own cluster code handles the disconnect in a listener of the same
// event; being first, this one marks the drain before the servers close.
process.prependListener('internalMessage', (msg) => {
  if (draining || !msg || msg.cmd !== 'NODE_CLUSTER' || msg.act !== 'disconnect') return;
  draining = true;
  graceEnd = Date.now() + GRACE_MS;
  dc.subscribe('http.server.request.start', closeAfter);
});

// closeAfter makes a response the last on its connection, also when the
// app sets "Connection: keep-alive" itself.
function closeAfter({ response }) {
  response.shouldKeepAlive = false;
  const setHeader = response.setHeader;
  response.setHeader = function (name, value) {
    if (typeof name === 'string' && name.toLowerCase() === 'connection') value = 'close';
    return setHeader.call(this, name, value);
  };
  const writeHead = response.writeHead;
  response.writeHead = function (...args) {
    const h = args[args.length - 1];
    if (h && typeof h === 'object' && !Array.isArray(h)) {
      for (const k of Object.keys(h)) if (k.toLowerCase() === 'connection') h[k] = 'close';
    }
    return writeHead.apply(this, args);
  };
}

for (const Server of [http.Server, https.Server]) {
  const closeIdle = Server.prototype.closeIdleConnections;
  if (typeof closeIdle !== 'function') continue;
  Server.prototype.closeIdleConnections = function () {
    if (!draining) return closeIdle.call(this);
    // unref: the timer is never what keeps the worker alive.
    setTimeout(() => closeIdle.call(this), Math.max(0, graceEnd - Date.now())).unref();
  };
}
