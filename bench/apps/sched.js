// The sched suite's app (bench/sched.sh): a short answer that names the
// worker, and a slow route on one instance only.
//
//   GET /slow  instance 0 blocks its event loop for SLOW_MS (200) ms, then
//              answers; every other instance answers at once. This is the
//              "slow instance" of issue #15: while it is blocked it can
//              neither accept nor answer anything, as a synchronous handler
//              or a long GC pause would.
//   GET /...   anything else: "hello from node pid P (instance I)", at once.
//
// The instance number is NODE_APP_INSTANCE, which tend and PM2 set and
// bench/apps/cluster.js passes to each worker it forks. It calls
// listen(PORT) like any Node app and knows nothing of the manager.
const http = require('node:http');

const PORT = Number(process.env.PORT) || 3000;
const INSTANCE = process.env.NODE_APP_INSTANCE;
const SLOW_MS = Number(process.env.SLOW_MS) || 200;
const slow = INSTANCE === '0';
// Atomics.wait on a private buffer sleeps the thread without spinning: the
// event loop is blocked for SLOW_MS but the core stays free for the others.
const cell = new Int32Array(new SharedArrayBuffer(4));

const server = http.createServer((req, res) => {
  if (req.url === '/slow' && slow) Atomics.wait(cell, 0, 0, SLOW_MS);
  res.end(`hello from node pid ${process.pid} (instance ${INSTANCE})\n`);
});

server.listen(PORT, () => {
  if (process.send) process.send('ready');
});

process.on('SIGINT', () => server.close(() => process.exit(0)));
