// Listens on OWN_PORT itself, as most apps do: tend holds no port for it.
// Answers with its pid.
require('node:http').createServer((q, s) => s.end(`pid ${process.pid}\n`)).listen(Number(process.env.OWN_PORT), '127.0.0.1');
