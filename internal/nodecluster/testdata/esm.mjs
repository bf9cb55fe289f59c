// ES module app.
import { createServer } from 'node:http';
createServer((req, res) => res.end(String(process.pid)))
  .listen({ port: +process.env.PORT, host: '127.0.0.1' });
