// An idle app: keeps the event loop alive and does nothing, like PM2's own
// idle.js measurements (research/pm2.md §6). Used for `ls` latency and daemon RSS.
setInterval(() => {}, 1 << 30);
