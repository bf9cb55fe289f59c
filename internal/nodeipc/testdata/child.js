// A Node child for the nodeipc tests; argv[2] picks the scenario.
'use strict';
const fs = require('fs');
const net = require('net');

switch (process.argv[2]) {
  case 'echo': // echoes every message; keeps running while connected
    process.on('message', (m) => process.send({ echo: m }));
    process.send({ hello: process.pid });
    break;
  case 'serve': // serves on a received listening handle, then sends one back
    process.on('message', (m, h) => {
      if (!h) return;
      net.createServer((s) => s.end('served by ' + process.pid))
        .listen(h, () => process.send({ serving: m }));
    });
    {
      const own = net.createServer((s) => s.end('own'));
      own.listen(0, '127.0.0.1', () => {
        process.send({ port: own.address().port }, own);
        process.send({ after: 1 }); // Node holds this back until our ACK
      });
    }
    break;
  case 'junk': // bytes no Node sender would write, then a real message
    fs.writeSync(3, 'not json\n\n{"a":1}{"b":2}\n');
    process.send({ ok: 1 });
    process.on('message', () => {});
    break;
  case 'disconnect': // exit code 7 proves the 'disconnect' event fired
    process.on('disconnect', () => process.exit(7));
    process.send('ready');
    break;
  default:
    throw new Error('unknown scenario ' + process.argv[2]);
}
