// The worker side of the conformance suite. Run as a cluster worker, under
// Node's own primary or under tend, it runs every case of $GROUP in turn
// and writes what it saw, as JSON, to $RESULT_DIR/<pid>.json, then stays
// alive (a worker that exits would be restarted by tend and not by Node).
// Observations never hold pids, ports or paths: the same app must write
// the same file under both primaries.
'use strict';
const cluster = require('cluster');
const dgram = require('dgram');
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');

if (!cluster.isWorker) {
  console.error('cases.cjs runs as a cluster worker');
  process.exit(2);
}

const env = process.env;
const TIMEOUT = 15000; // what "hangs" means: far beyond any local answer, even on a loaded host

// Messages from the primary, kept from the start: one may come before the
// case that looks for it.
const received = [];
let onReceived = () => {};
process.on('message', (m) => { received.push(m); onReceived(); });

const serve = (req, res) => res.end('ok');

// listen resolves to the server once listening, or to the error's code.
function listen(args, server = http.createServer(serve)) {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve({ code: 'hang', server }), TIMEOUT);
    server.once('error', (err) => { clearTimeout(t); resolve({ code: err.code, server }); });
    server.listen(args, () => { clearTimeout(t); resolve({ server }); });
  });
}

function close(server) {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve('hang'), TIMEOUT);
    server.close(() => { clearTimeout(t); resolve('closed'); });
  });
}

// get does one request; it answers 'ok', an error code, or 'hang'.
function get(opts, proto = http) {
  return new Promise((resolve) => {
    const req = proto.get({ agent: false, ...opts, timeout: TIMEOUT }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? 'ok' : `status ${res.statusCode}`));
    });
    req.on('timeout', () => { req.destroy(); resolve('hang'); });
    req.on('error', (err) => resolve(err.code || err.message));
  });
}

// shape is address() without the port, which differs from run to run.
function shape(server) {
  const a = server.address();
  if (a === null || typeof a === 'string') return a === null ? null : 'path';
  return { address: a.address, family: a.family };
}

const cases = {
  // Bind errors reach the worker with their own code.
  async bind_in_use() {
    const r = await listen({ port: +env.HELD_PORT, host: '127.0.0.1' });
    return r.code || 'listening';
  },
  async bind_not_available() {
    const r = await listen({ port: 0, host: '192.0.2.1' });
    return r.code || 'listening';
  },
  async bind_twice() {
    const a = await listen({ port: +env.FREE_PORT, host: '127.0.0.1' });
    const b = await listen({ port: +env.FREE_PORT, host: '127.0.0.1' });
    return { first: a.code || 'listening', second: b.code || 'listening' };
  },

  // Addresses: what address() says and who can connect.
  async default_address() {
    const r = await listen({ port: 0 });
    const port = r.server.address().port;
    return { shape: shape(r.server), v4: await get({ host: '127.0.0.1', port }), v6: await get({ host: '::1', port }) };
  },
  async dual_stack() {
    const r = await listen({ port: 0, host: '::' });
    const port = r.server.address().port;
    return { shape: shape(r.server), v4: await get({ host: '127.0.0.1', port }), v6: await get({ host: '::1', port }) };
  },
  async ipv6_only() {
    const r = await listen({ port: 0, host: '::', ipv6Only: true });
    const port = r.server.address().port;
    return { shape: shape(r.server), v4: await get({ host: '127.0.0.1', port }), v6: await get({ host: '::1', port }) };
  },
  async ipv4_any_on_port() {
    // $PORT is the port tend binds up front (--port); under Node, a free one.
    const r = await listen({ port: +env.PORT, host: '0.0.0.0' });
    if (r.code) return r.code;
    return { shape: shape(r.server), v4: await get({ host: '127.0.0.1', port: +env.PORT }), v6: await get({ host: '::1', port: +env.PORT }) };
  },
  async loopback() {
    const r = await listen({ port: 0, host: '127.0.0.1' });
    return { shape: shape(r.server), v4: await get({ host: '127.0.0.1', port: r.server.address().port }) };
  },

  // A server's life in a worker.
  async close_and_listen_again() {
    const a = await listen({ port: 0, host: '127.0.0.1' });
    const port = a.server.address().port;
    const closed = await close(a.server);
    const b = await listen({ port, host: '127.0.0.1' });
    return { closed, again: b.code || 'listening', answer: b.code ? null : await get({ host: '127.0.0.1', port }) };
  },
  async exclusive() {
    const r = await listen({ port: 0, host: '127.0.0.1', exclusive: true });
    return { listen: r.code || 'listening', answer: await get({ host: '127.0.0.1', port: r.server.address().port }) };
  },
  async get_connections() {
    const r = await listen({ port: 0, host: '127.0.0.1' });
    const n = await new Promise((resolve) => {
      const t = setTimeout(() => resolve('hang'), TIMEOUT);
      r.server.getConnections((err, count) => { clearTimeout(t); resolve(err ? err.code : count); });
    });
    return { count: n, closed: await close(r.server) };
  },

  // Requests through the primary's socket, as clients send them.
  async pipelining() {
    const r = await listen({ port: 0, host: '127.0.0.1' });
    const answers = await new Promise((resolve) => {
      const c = net.connect(r.server.address().port, '127.0.0.1');
      let got = '';
      const t = setTimeout(() => { c.destroy(); resolve('hang'); }, TIMEOUT);
      c.on('data', (d) => { got += d; });
      c.on('end', () => { clearTimeout(t); resolve(got.split('HTTP/1.1 200').length - 1); });
      c.on('error', (err) => { clearTimeout(t); resolve(err.code); });
      c.end('GET / HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(2) + 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    });
    return { answers, closed: await close(r.server) };
  },
  async large_body() {
    const server = http.createServer((req, res) => {
      let n = 0;
      req.on('data', (d) => { n += d.length; });
      req.on('end', () => res.end(String(n)));
    });
    const r = await listen({ port: 0, host: '127.0.0.1' }, server);
    const got = await new Promise((resolve) => {
      const req = http.request({ host: '127.0.0.1', port: r.server.address().port, method: 'POST', agent: false }, (res) => {
        let b = '';
        res.on('data', (d) => { b += d; });
        res.on('end', () => resolve(b));
      });
      req.on('error', (err) => resolve(err.code));
      req.end(Buffer.alloc(8 << 20, 'x'));
    });
    return { got, closed: await close(r.server) };
  },
  async upgrade() {
    const server = http.createServer(serve);
    server.on('upgrade', (req, sock) => sock.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n'));
    const r = await listen({ port: 0, host: '127.0.0.1' }, server);
    const got = await new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: r.server.address().port, agent: false,
        headers: { Connection: 'Upgrade', Upgrade: 'x' } });
      req.on('upgrade', (res, sock) => { sock.destroy(); resolve(res.statusCode); });
      req.on('response', (res) => resolve(res.statusCode));
      req.on('error', (err) => resolve(err.code));
    });
    return { got, closed: await close(r.server) };
  },
  async https() {
    const server = require('https').createServer({ cert: fs.readFileSync(env.CERT_FILE), key: fs.readFileSync(env.KEY_FILE) }, serve);
    const r = await listen({ port: 0, host: '127.0.0.1' }, server);
    const got = await get({ host: '127.0.0.1', port: r.server.address().port, rejectUnauthorized: false }, require('https'));
    return { got, closed: await close(r.server) };
  },
  async tls_resumption() {
    // The primary shares the first worker's ticket keys (queryServer's
    // data) with every worker: a session resumes on whichever answers.
    const tls = require('tls');
    const server = tls.createServer({ cert: fs.readFileSync(env.CERT_FILE), key: fs.readFileSync(env.KEY_FILE) },
      (sock) => sock.end('ok'));
    const r = await listen({ port: 0, host: '127.0.0.1' }, server);
    const connect = (session) => new Promise((resolve) => {
      const c = tls.connect({ host: '127.0.0.1', port: r.server.address().port, rejectUnauthorized: false, session, maxVersion: 'TLSv1.2' });
      let got;
      c.once('session', (s) => { got = s; });
      c.on('data', () => {});
      c.on('end', () => resolve({ reused: c.isSessionReused(), session: got }));
      c.on('error', (err) => resolve({ err: err.code }));
    });
    const first = await connect();
    const runs = [];
    for (let i = 0; i < 4; i++) runs.push((await connect(first.session)).reused);
    return { first: first.reused, again: runs, closed: await close(r.server) };
  },
  async close_with_idle_keepalive() {
    const r = await listen({ port: 0, host: '127.0.0.1' });
    const agent = new http.Agent({ keepAlive: true });
    const first = await new Promise((resolve) => {
      http.get({ host: '127.0.0.1', port: r.server.address().port, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve('ok'));
      }).on('error', (err) => resolve(err.code));
    });
    const closed = await close(r.server); // Node 19+ closes idle keep-alive connections
    agent.destroy();
    return { first, closed };
  },
  async two_ephemeral_servers() {
    const a = await listen({ port: 0, host: '127.0.0.1' });
    const b = await listen({ port: 0, host: '127.0.0.1' });
    return { distinct: a.server.address().port !== b.server.address().port,
      a: await get({ host: '127.0.0.1', port: a.server.address().port }),
      b: await get({ host: '127.0.0.1', port: b.server.address().port }) };
  },

  // Messages from and to the primary.
  async message_from_primary() {
    // The test has the primary send {"hello":"worker"} once the worker is up.
    const has = () => received.some((m) => m && m.hello === 'worker');
    if (has()) return 'received';
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve('hang'), 2 * TIMEOUT);
      onReceived = () => { if (has()) { clearTimeout(t); resolve('received'); } };
    });
  },
  async send_callback() {
    return new Promise((resolve) => process.send({ hello: 1 }, (err) => resolve(err ? err.code : 'sent')));
  },
  async send_1mib() {
    return new Promise((resolve) => process.send('x'.repeat(1 << 20), (err) => resolve(err ? err.code : 'sent')));
  },

  // Other kinds of servers.
  async unix_socket() {
    const p = path.join(env.RESULT_DIR, `${env.GROUP}.sock`);
    const r = await listen({ path: p });
    if (r.code) return r.code;
    return { shape: shape(r.server), answer: await get({ socketPath: p }) };
  },
  async udp() {
    const s = dgram.createSocket('udp4');
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve('hang'), TIMEOUT);
      s.once('error', (err) => { clearTimeout(t); resolve(err.code); });
      s.bind(0, '127.0.0.1', () => { clearTimeout(t); resolve(typeof s.address().port); });
    });
  },

  // Alone (with two workers on one socket either may read a datagram):
  // a udp6 socket on "::" takes IPv4 too, as a TCP server does.
  async udp6_takes_ipv4() {
    const s = dgram.createSocket('udp6');
    const bound = await new Promise((resolve) => {
      s.once('error', (err) => resolve(err.code));
      s.bind(0, '::', () => resolve('bound'));
    });
    if (bound !== 'bound') return bound;
    const got = new Promise((resolve) => {
      const t = setTimeout(() => resolve('hang'), TIMEOUT);
      s.once('message', () => { clearTimeout(t); resolve('received'); });
    });
    const c = dgram.createSocket('udp4');
    c.send('x', s.address().port, '127.0.0.1', () => c.close());
    return got;
  },

  // Alone: a worker at maxConnections refuses what the primary hands it;
  // the connection is served once it has room.
  async max_connections() {
    const server = http.createServer(serve);
    server.maxConnections = 1;
    const r = await listen({ port: 0, host: '127.0.0.1' }, server);
    const port = r.server.address().port;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    await get({ host: '127.0.0.1', port, agent }); // holds the one connection
    const second = get({ host: '127.0.0.1', port });
    setTimeout(() => agent.destroy(), 300);
    return { second: await second, closed: await close(r.server) };
  },

  // Alone: a dgram port is bound twice only by sockets that ask for
  // reuseAddr (on UDP it would let any user's program share the port).
  async udp_reuse_addr() {
    const bind = (opts, port) => new Promise((resolve) => {
      const s = dgram.createSocket(opts);
      s.once('error', (err) => resolve({ code: err.code }));
      s.bind(port, '127.0.0.1', () => resolve({ port: s.address().port }));
    });
    const a = await bind({ type: 'udp4', reuseAddr: true }, 0);
    if (a.code) return a.code;
    const b = await bind({ type: 'udp4', reuseAddr: true }, a.port);
    const c = await bind({ type: 'udp4' }, a.port);
    return { with: b.code || 'bound', without: c.code || 'bound' };
  },

  // Alone: when the only worker closes its server, the port refuses.
  async all_closed_refuses() {
    const r = await listen({ port: +env.FREE_PORT, host: '127.0.0.1' });
    await close(r.server);
    // The worker's close() returns before the primary has closed the
    // socket: a connection made in between is reset rather than refused,
    // under Node too. Either is a no; a hang is the failure.
    const got = await get({ host: '127.0.0.1', port: +env.FREE_PORT });
    return got === 'ECONNREFUSED' || got === 'ECONNRESET' ? 'refused' : got;
  },
};

const groups = {
  // Every worker runs these.
  each: ['bind_in_use', 'bind_not_available', 'bind_twice', 'default_address', 'dual_stack', 'ipv6_only',
    'ipv4_any_on_port', 'loopback', 'exclusive', 'get_connections', 'unix_socket', 'udp',
    'pipelining', 'large_body', 'upgrade', 'https', 'tls_resumption', 'close_with_idle_keepalive', 'two_ephemeral_servers',
    'send_callback', 'send_1mib', 'message_from_primary'],
  // One worker only: with two, whether a port closed by both can be bound
  // again at once depends on which closes its copy last, under Node too.
  alone: ['close_and_listen_again', 'all_closed_refuses', 'udp6_takes_ipv4', 'max_connections', 'udp_reuse_addr'],
};

// How a worker ends, for the "exit" group: its primary records the exit
// (code, signal, whether it was meant: exitedAfterDisconnect).
const exits = {
  code: () => process.exit(3),
  signal: () => process.kill(process.pid, 'SIGTERM'),
  disconnect: () => cluster.worker.disconnect(), // then nothing keeps it alive
  destroy: () => cluster.worker.destroy(),
};

if (env.GROUP === 'exit') {
  // Once online (the primary has its channel), the way out $EXIT names.
  setImmediate(exits[env.EXIT]);
  return;
}

(async () => {
  const out = { worker_id_type: typeof cluster.worker.id };
  // <pid>.progress names the case that runs and what the others gave: a
  // test that stops waiting for <pid>.json says which case took its time.
  const progress = path.join(env.RESULT_DIR, `${process.pid}.progress`);
  for (const name of groups[env.GROUP]) {
    fs.writeFileSync(progress, JSON.stringify({ running: name, since: new Date().toISOString(), done: out }));
    try {
      out[name] = await cases[name]();
    } catch (err) {
      out[name] = { threw: err.code || err.message };
    }
  }
  const file = path.join(env.RESULT_DIR, `${process.pid}.json`);
  fs.writeFileSync(file + '.tmp', JSON.stringify(out));
  fs.renameSync(file + '.tmp', file);
  setInterval(() => {}, 1 << 30);
})();
