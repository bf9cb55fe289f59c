// The seeds' cluster.js (seeds/003): Node's own cluster module as the
// baseline tend's cluster mode is compared with. The primary forks one worker
// per core running the unmodified demo app and re-forks a worker that exits.
// CommonJS instead of the seeds' ESM so it needs no package.json "type".
//
//   PORT=3000 node bench/apps/cluster.js
const cluster = require('node:cluster');
const { availableParallelism } = require('node:os');
const path = require('node:path');

const cpuCount = availableParallelism();

console.log(`Primary pid=${process.pid}`);

cluster.setupPrimary({
  exec: path.join(__dirname, '..', '..', 'examples', 'node', 'index.js'),
});

for (let i = 0; i < cpuCount; i++) {
  cluster.fork();
}

cluster.on('exit', (worker, code, signal) => {
  console.log(`Worker ${worker.process.pid} has terminated.`);
  console.log('Initiating replacement worker.');
  cluster.fork();
});
