// The seeds' demo app, without dependencies: GET /read-content reads a
// small file per request; GET /cpu does about a millisecond of hashing.
// It knows nothing of tend: it calls listen(PORT) like any Node app.
//
//   tend start examples/node/index.js -i max          (cluster on port 3000)
//   tend start examples/node/index.js -i max --sched shared
const http = require('node:http');
const crypto = require('node:crypto');
const { readFile } = require('node:fs/promises');
const path = require('node:path');

const PORT = Number(process.env.PORT) || 3000;
const content = path.join(__dirname, 'content.txt');

const server = http.createServer(async (req, res) => {
  if (req.url === '/read-content') {
    try {
      const data = await readFile(content, 'utf8');
      res.end(data);
    } catch (err) {
      console.error('Error reading file:', err);
      res.statusCode = 500;
      res.end('Internal Server Error');
    }
    return;
  }
  if (req.url === '/cpu') {
    let h = Buffer.from(req.url);
    for (let i = 0; i < 2000; i++) h = crypto.createHash('sha256').update(h).digest();
    res.end(h.toString('hex', 0, 8) + '\n');
    return;
  }
  res.end(`hello from node pid ${process.pid} (instance ${process.env.NODE_APP_INSTANCE})\n`);
});

server.listen(PORT, () => {
  console.log(`App (PID: ${process.pid}) is listening on port ${PORT}`);
  if (process.send) process.send('ready');
});

// Messages from `tend send`, answered back to tend.
process.on('message', (msg) => {
  console.log('message from tend:', JSON.stringify(msg));
  if (process.send && msg && msg.ping) process.send({ pong: msg.ping, pid: process.pid });
});

process.on('SIGINT', () => {
  server.close(() => process.exit(0));
});
