// Plain CommonJS HTTP app; HOST unset means listen(port) on all addresses,
// which reaches the primary as address null.
const http = require('http');
const srv = http.createServer((req, res) => res.end(String(process.pid)));
srv.on('error', (e) => process.send({ error: e.code }));
srv.listen(+process.env.PORT, process.env.HOST);
