// Listens on $PORT without an address, and answers with the address its
// server has. On the message "relisten" it closes its server and listens
// again, as apps that restart their server in place do.
const http = require('node:http');
const server = http.createServer((q, s) => s.end(`${server.address().address} pid ${process.pid}\n`));
server.listen(Number(process.env.PORT));
process.on('message', (m) => {
  if (m === 'relisten') server.close(() => server.listen(Number(process.env.PORT), () => process.send('relistened')));
});
