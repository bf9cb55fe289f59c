'use strict';
// tend's fallback for Node apps when Node's cluster protocol is not usable:
// the app runs in socket mode (the shared listening socket is fd 3,
// systemd-style) and this file, loaded with NODE_OPTIONS=--require, turns
// the app's first listen(port) into listen({fd: 3}).
//
// It acts only in the process the socket is meant for (LISTEN_PID is this
// pid), only on the main thread, only once, and it removes the LISTEN_*
// variables so that children never take the socket.
const net = require('node:net');
const { isMainThread } = require('node:worker_threads');

const forUs = process.env.LISTEN_PID === String(process.pid) && Number(process.env.LISTEN_FDS) >= 1;
for (const k of ['LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) delete process.env[k];

// portOf returns the TCP port a listen() call asks for, or 0 when it asks
// for none (a path, a handle, an fd, or an ephemeral port).
function portOf(args) {
  let a = args[0];
  if (a !== null && typeof a === 'object') {
    if (a instanceof net.Server || a.fd !== undefined || a.path !== undefined || a.handle !== undefined || a._handle !== undefined) return 0;
    a = a.port;
  }
  const n = typeof a === 'string' && /^\d+$/.test(a) ? Number(a) : a;
  return Number.isInteger(n) && n > 0 ? n : 0;
}

if (forUs && isMainThread) {
  const listen = net.Server.prototype.listen;
  let used = false;
  net.Server.prototype.listen = function (...args) {
    if (used || portOf(args) === 0) return listen.apply(this, args);
    used = true;
    const cb = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined;
    return listen.call(this, { fd: 3 }, cb);
  };
}
