// A test-only app for docker_test.go: a request is answered only once
// the stop of this process has begun (its server stopped listening: a
// Node worker disconnected by tend, or the stop signal), and 1 s after
// that, its status and headers at once. The test knows the request is in
// flight before it stops the container, and its whole answer proves that
// the stop waited for it, whenever the stop signal arrived: a stop that
// does not drain cuts the body off.
const http = require('node:http');

const PORT = Number(process.env.PORT) || 3001;
const AFTER_STOP = 1000; // what a drain must wait for, beyond the stop's beginning
const GIVE_UP = 60000; // a stop that never comes: answer anyway, and say so

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.flushHeaders();
  console.log(`slow request ${req.url} began`);
  const began = Date.now();
  const wait = setInterval(() => {
    if (server.listening && Date.now() - began < GIVE_UP) return;
    clearInterval(wait);
    const stopping = !server.listening;
    console.log(`slow request ${req.url}: ${stopping ? 'the stop began' : 'no stop came'}`);
    setTimeout(() => res.end(stopping ? 'slow answer after the stop began\n' : 'slow answer without a stop\n'), AFTER_STOP);
  }, 20);
});

server.listen(PORT);

process.on('SIGINT', () => {
  server.close(() => process.exit(0));
});
