// Listens on $PORT without an address, and answers with the address its
// server has. On the message "relisten" it closes its server and listens
// again, as apps that restart their server in place do; on "loopback",
// again but on 127.0.0.1.
const http = require('node:http');
const server = http.createServer((q, s) => s.end(`${server.address().address} pid ${process.pid}\n`));
server.listen(Number(process.env.PORT));
process.on('message', (m) => {
  const host = m === 'loopback' ? '127.0.0.1' : undefined;
  server.close(() => server.listen(Number(process.env.PORT), host, () => process.send('relistened')));
});
server.on('error', (err) => process.send(`error ${err.code}`));
