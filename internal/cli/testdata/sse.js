// A server-sent events stream that never ends, and a worker that cleans
// up after a disconnect: what the stop of a Node cluster worker must let
// run. /events keeps the response open; SIGINT closes the streams and
// exits; a 'disconnect' starts a cleanup of CLEANUP_MS before exiting.
const http = require('node:http');
const streams = new Set();
const server = http.createServer((req, res) => {
  if (req.url === '/events') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    res.write('data: hello\n\n');
    streams.add(res);
    req.on('close', () => streams.delete(res));
    return;
  }
  res.end(`pid ${process.pid}\n`);
});
server.listen(Number(process.env.PORT));
process.on('SIGINT', () => {
  console.log('sigint handler ran');
  for (const res of streams) res.end();
  server.close(() => process.exit(0));
});
process.on('disconnect', () => {
  const ms = Number(process.env.CLEANUP_MS || 0);
  if (ms > 0) {
    setTimeout(() => { console.log('cleanup done'); process.exit(0); }, ms);
  }
});
