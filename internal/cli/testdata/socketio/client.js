// Socket.IO 4 clients for sticky_test.go: node client.js URL IP...
// One client per source address IP, one after another, each with the
// default transports (long-polling, then the websocket upgrade) and every
// HTTP request on a new connection from IP. For each it prints a JSON
// line: {ip, pid, transport} once the upgrade is done and an event was
// answered, or {ip, error, status, body} if the session failed.
const http = require('http');
const { io } = require('socket.io-client');

const [url, ...ips] = process.argv.slice(2);

function one(ip) {
  return new Promise((resolve) => {
    const agent = new http.Agent({ localAddress: ip, keepAlive: false });
    const socket = io(url, { agent, reconnection: false, timeout: 10000, forceNew: true });
    let finished = false;
    const done = (r) => {
      if (finished) return; // close() below emits a disconnect
      finished = true;
      clearTimeout(timer);
      resolve(Object.assign({ ip }, r));
      socket.close();
      agent.destroy();
    };
    const timer = setTimeout(() => done({ error: 'timed out' }), 15000);
    const ask = () => socket.emit('whoami', (r) => done(r));
    socket.on('connect', () => {
      if (socket.io.engine.transport.name === 'websocket') ask();
      else socket.io.engine.once('upgrade', ask);
    });
    const failed = (err) => {
      const ctx = err && err.context;
      done({ error: String(err && err.message), status: err && err.description,
             body: ctx && typeof ctx.responseText === 'string' ? ctx.responseText : undefined });
    };
    socket.on('connect_error', failed);
    socket.on('disconnect', (reason, details) => failed(Object.assign(new Error('disconnect: ' + reason), details)));
  });
}

(async () => {
  for (const ip of ips) console.log(JSON.stringify(await one(ip)));
})();
