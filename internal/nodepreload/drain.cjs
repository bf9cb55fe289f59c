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
// as soon as its last connection ends. Until the disconnect this file only
// adds one listener: it loads nothing and no hook runs per request. Any
// failure in it leaves Node's own disconnect as it was.

// Children of the app (node processes, worker threads) need none of this:
// take this preload out of the NODE_OPTIONS they inherit.
if (process.env.NODE_OPTIONS) {
  let opts = process.env.NODE_OPTIONS;
  for (const own of [`--require "${__filename}"`, `--require ${__filename}`]) opts = opts.split(own).join('');
  opts = opts.trim();
  if (opts) process.env.NODE_OPTIONS = opts;
  else delete process.env.NODE_OPTIONS;
}

// tend sets TEND_DRAIN_MS: a second, or half of kill_timeout if shorter.
const GRACE_MS = /^\d+$/.test(process.env.TEND_DRAIN_MS || '') ? Number(process.env.TEND_DRAIN_MS) : 1000;
let draining = false;

// Node's own cluster code handles the disconnect in a listener of the same
// event; prepended, this one runs first, in the same tick, before the
// servers close.
process.prependListener('internalMessage', (msg) => {
  if (draining || !msg || msg.cmd !== 'NODE_CLUSTER' || msg.act !== 'disconnect') return;
  draining = true;
  try {
    drain(Date.now() + GRACE_MS);
  } catch (err) {
    process.emitWarning(`tend drain preload: ${err && err.message}`);
  }
});

function drain(graceEnd) {
  const dc = require('diagnostics_channel');
  if (typeof dc.subscribe === 'function') dc.subscribe('http.server.request.start', closeAfter);
  for (const Server of [require('http').Server, require('https').Server]) {
    const closeIdle = Server.prototype.closeIdleConnections;
    if (typeof closeIdle !== 'function') continue;
    Server.prototype.closeIdleConnections = function () {
      // unref: the timer is never what keeps the worker alive.
      setTimeout(() => closeIdle.call(this), Math.max(0, graceEnd - Date.now())).unref();
    };
  }
}

const isConnection = (k) => typeof k === 'string' && k.toLowerCase() === 'connection';

// closeAfter makes a response the last on its connection, also when the
// app sets "Connection: keep-alive" itself (setHeader, or writeHead with
// an object, a flat array or an array of pairs; the app's own headers
// object is copied, never changed).
function closeAfter({ response }) {
  response.shouldKeepAlive = false;
  const setHeader = response.setHeader;
  response.setHeader = function (name, value) {
    return setHeader.call(this, name, isConnection(name) ? 'close' : value);
  };
  const writeHead = response.writeHead;
  response.writeHead = function (...args) {
    const i = args.length - 1;
    if (i >= 1) args[i] = closeHeaders(args[i]);
    return writeHead.apply(this, args);
  };
}

function closeHeaders(h) {
  if (Array.isArray(h)) {
    if (h.some(Array.isArray)) return h.map((kv) => (Array.isArray(kv) && isConnection(kv[0]) ? [kv[0], 'close'] : kv));
    if (!h.some(isConnection)) return h;
    return h.map((v, j) => (j % 2 === 1 && isConnection(h[j - 1]) ? 'close' : v));
  }
  if (h && typeof h === 'object' && Object.keys(h).some(isConnection)) {
    const out = { ...h };
    for (const k of Object.keys(out)) if (isConnection(k)) out[k] = 'close';
    return out;
  }
  return h;
}
