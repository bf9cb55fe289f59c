// A test-only app for docker_test.go: every request is answered after
// 2 s, its status and headers at once, so that the test knows the request
// is in flight before it stops the container, and the end of the body
// after the delay, which a stop that does not drain would cut off.
const http = require('node:http');

const PORT = Number(process.env.PORT) || 3001;

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  res.flushHeaders();
  console.log(`slow request ${req.url} began`);
  setTimeout(() => res.end('slow answer\n'), 2000);
});

server.listen(PORT);

process.on('SIGINT', () => {
  server.close(() => process.exit(0));
});
