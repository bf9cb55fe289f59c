// Listens one port above the PORT tend gives it: tend must report it.
require('node:http').createServer((q, s) => s.end('other\n')).listen(Number(process.env.PORT) + 1);
