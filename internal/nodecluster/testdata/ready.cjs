// PM2-style readiness: process.send('ready') once listening.
const http = require('http');
http.createServer((req, res) => res.end(String(process.pid)))
  .listen(+process.env.PORT, '127.0.0.1', () => process.send('ready'));
