// Messages both ways: hello on start, then echo whatever arrives.
process.on('message', (m) => process.send({ echo: m }));
process.send({ hello: process.pid });
