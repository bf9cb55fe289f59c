// A server for liveness tests: GET /health answers 500 while the file
// $HEALTH_FILE-<instance> exists (and every other time with FLAP set), 200
// otherwise; any other path answers with the pid, as boot.js does, after
// 2 s while the file $SLOW_FILE-<instance> exists.
const http = require('node:http');
const fs = require('node:fs');
// A broken build: with the file $CRASH_FILE there, a new process dies at boot.
if (process.env.CRASH_FILE && fs.existsSync(process.env.CRASH_FILE)) throw new Error('boot failure (CRASH_FILE)');
let probes = 0;
const warmAt = Date.now() + Number(process.env.WARM_MS || 0); // 503 on /health until then
const server = http.createServer((req, res) => {
  if (req.url === '/health') {
    probes++;
    if (Date.now() < warmAt) {
      res.writeHead(503);
      res.end('warming up\n');
      return;
    }
    const bad = fs.existsSync(`${process.env.HEALTH_FILE}-${process.env.NODE_APP_INSTANCE}`) ||
      (process.env.FLAP && probes % 2 === 0);
    res.writeHead(bad ? 500 : 200);
    res.end(bad ? 'unwell\n' : 'well\n');
    return;
  }
  const slow = process.env.SLOW_FILE && fs.existsSync(`${process.env.SLOW_FILE}-${process.env.NODE_APP_INSTANCE}`);
  setTimeout(() => res.end(`pid ${process.pid} build a\n`), slow ? 2000 : 0);
});
server.listen(Number(process.env.PORT));
process.on('SIGINT', () => server.close(() => process.exit(0)));
