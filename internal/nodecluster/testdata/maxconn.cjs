// A server that takes one connection at a time (server.maxConnections): a
// worker refuses the connections the primary hands it beyond that one.
const http = require('http');
const server = http.createServer((req, res) => res.end(String(process.pid)));
server.maxConnections = 1;
server.keepAliveTimeout = 60000;
server.listen(+process.env.PORT, '127.0.0.1');
