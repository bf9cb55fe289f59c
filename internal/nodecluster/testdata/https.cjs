// HTTPS app: its queryServer carries TLS ticket keys in "data", which the
// primary must echo back.
const https = require('https');
const fs = require('fs');
https.createServer({
  key: fs.readFileSync(process.env.TLS_KEY),
  cert: fs.readFileSync(process.env.TLS_CERT),
}, (req, res) => res.end(String(process.pid))).listen(+process.env.PORT, '127.0.0.1');
