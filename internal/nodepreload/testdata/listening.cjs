// A plain app for the drain test: GET /listening answers whether its
// server still listens (false once the worker's disconnect closed it).
const http = require('node:http');
const server = http.createServer((req, res) => {
  res.end(req.url === '/listening' ? String(server.listening) : `pid ${process.pid}`);
});
server.listen(Number(process.env.PORT));
