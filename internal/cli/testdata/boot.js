// A server whose start-up is steered by the environment, for reload tests:
// CRASH_ON_START throws during boot, NEVER_READY never listens,
// READY_DELAY_MS delays listen().
if (process.env.CRASH_ON_START) throw new Error('boot failure (CRASH_ON_START)');
const http = require('node:http');
const server = http.createServer((req, res) => {
  res.setHeader('Connection', req.headers.connection === 'close' ? 'close' : 'keep-alive');
  res.end(`pid ${process.pid} build ${process.env.BUILD || 'a'}\n`);
});
if (!process.env.NEVER_READY) {
  setTimeout(() => server.listen(Number(process.env.PORT)), Number(process.env.READY_DELAY_MS || 0));
} else {
  setInterval(() => {}, 1000);
}
process.on('SIGINT', () => server.close(() => process.exit(0)));
// PM2's shutdown_with_message: stop on a 'shutdown' message.
process.on('message', (m) => {
  if (m === 'shutdown') {
    console.log('shutdown message');
    server.close(() => process.exit(0));
  }
});
console.log(`env FROM_SHELL=${process.env.FROM_SHELL || ''} pid ${process.pid}`);
