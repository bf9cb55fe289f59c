// A plain app for the drain test: GET /listening answers whether its
// server still listens (false once the worker's disconnect closed it);
// /set, /object, /flat and /pairs ask for keep-alive themselves, in each
// way Node lets an app set a header.
const http = require('node:http');
const keep = Object.freeze({ Connection: 'keep-alive' });
const server = http.createServer((req, res) => {
  switch (req.url) {
    case '/listening':
      return res.end(String(server.listening));
    case '/set':
      res.setHeader('Connection', 'keep-alive');
      return res.end('set');
    case '/object':
      res.writeHead(200, keep);
      return res.end('object');
    case '/flat':
      res.writeHead(200, ['Connection', 'keep-alive']);
      return res.end('flat');
    case '/pairs':
      res.writeHead(200, [['Connection', 'keep-alive']]);
      return res.end('pairs');
  }
  res.end(`pid ${process.pid}`);
});
server.listen(Number(process.env.PORT));
