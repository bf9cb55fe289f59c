// Listens where LISTEN says (a port number or a unix socket path), tells
// the primary {listening} or {error: code}, and closes its server when the
// primary sends 'close', then tells {closed}.
const net = require('net');
const where = process.env.LISTEN;
const srv = net.createServer((c) => c.end());
srv.on('error', (e) => process.send({ error: e.code }));
srv.listen(/^\d+$/.test(where) ? { port: +where, host: '127.0.0.1' } : where, () => process.send({ listening: true }));
process.on('message', (m) => {
  if (m === 'close') srv.close(() => process.send({ closed: true }));
});
