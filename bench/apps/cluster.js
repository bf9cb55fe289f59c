// The seeds' cluster.js (seeds/003): Node's own cluster module as the
// baseline tend's cluster mode is compared with. The primary forks one worker
// per core running the unmodified demo app and re-forks a worker that exits.
// CommonJS instead of the seeds' ESM so it needs no package.json "type".
//
//   PORT=3000 node bench/apps/cluster.js
//
// For the sched suite: CLUSTER_WORKERS sets the number of workers (default
// one per core), CLUSTER_EXEC the worker script (default the demo app), and
// each worker gets NODE_APP_INSTANCE=0, 1, ... as under tend and PM2.
// NODE_CLUSTER_SCHED_POLICY=none in the primary's environment is Node's own
// switch from round robin to a shared socket.
const cluster = require('node:cluster');
const { availableParallelism } = require('node:os');
const path = require('node:path');

const count = Number(process.env.CLUSTER_WORKERS) || availableParallelism();
const exec = process.env.CLUSTER_EXEC || path.join(__dirname, '..', '..', 'examples', 'node', 'index.js');

console.log(`Primary pid=${process.pid}`);

cluster.setupPrimary({ exec });

const instances = new Map(); // worker id -> instance number, kept by replacements
function fork(instance) {
  const w = cluster.fork({ NODE_APP_INSTANCE: String(instance) });
  instances.set(w.id, instance);
}

for (let i = 0; i < count; i++) fork(i);

cluster.on('exit', (worker, code, signal) => {
  console.log(`Worker ${worker.process.pid} has terminated.`);
  console.log('Initiating replacement worker.');
  const instance = instances.get(worker.id);
  instances.delete(worker.id);
  fork(instance);
});
