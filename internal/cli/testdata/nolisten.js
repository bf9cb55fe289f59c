// A Node app that never listens: tend must say so, not hang.
setInterval(() => {}, 1000);
