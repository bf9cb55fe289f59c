// Two servers in one worker, one on an ephemeral port: in a cluster every
// worker gets the same ephemeral port.
const http = require('http');
http.createServer((req, res) => res.end(String(process.pid))).listen(+process.env.PORT, '127.0.0.1');
const side = http.createServer((req, res) => res.end(String(process.pid)));
side.listen(0, '127.0.0.1', () => process.send({ side: side.address().port }));
