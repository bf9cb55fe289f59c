// A Socket.IO 4 server with its defaults (long-polling first, then the
// websocket upgrade), run by sticky_test.go as a cluster-mode app. Each
// event is answered with the pid of the worker that holds the session.
const http = require('http');
const { Server } = require('socket.io');

const srv = http.createServer();
const io = new Server(srv);
io.on('connection', (socket) => {
  socket.on('whoami', (ack) => ack({ pid: process.pid, transport: socket.conn.transport.name }));
});
srv.listen(Number(process.env.PORT));
