// Listens on OTHER_PORT instead of the PORT tend gives it: tend must report it.
require('node:http').createServer((q, s) => s.end('other\n')).listen(Number(process.env.OTHER_PORT));
