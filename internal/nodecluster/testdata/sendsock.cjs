// A worker that sends its first connection to the primary, then asks its
// server for its connections and closes it: both need the primary's
// answers about the sockets it received.
const net = require('net');
const server = net.createServer((sock) => {
  process.send('have a socket', sock);
  server.getConnections((err, count) => {
    process.send({ count: err ? err.code : count });
    server.close(() => process.send({ closed: true }));
  });
});
server.listen(+process.env.PORT, '127.0.0.1');
