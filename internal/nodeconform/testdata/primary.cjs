// Node's own cluster primary, the oracle of the conformance suite: it forks
// $WORKERS workers of cases.cjs with the scheduling policy $SCHED ('rr' or
// 'none') and stays until it is killed. Workers that exit are not replaced.
'use strict';
const cluster = require('cluster');
const path = require('path');

cluster.schedulingPolicy = process.env.SCHED === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
cluster.setupPrimary({ exec: path.join(__dirname, 'cases.cjs') });
for (let i = 0; i < +process.env.WORKERS; i++) cluster.fork();
cluster.on('online', (worker) => worker.send({ hello: 'worker' }));
// What the primary saw of a worker's end, as a result file of its own,
// renamed into place whole: the test reads every *.json it finds.
cluster.on('exit', (worker, code, signal) => {
  const fs = require('fs');
  const file = path.join(process.env.RESULT_DIR, `exit-${worker.process.pid}.json`);
  fs.writeFileSync(file + '.tmp', JSON.stringify({ exit: { code, signal, planned: worker.exitedAfterDisconnect } }));
  fs.renameSync(file + '.tmp', file);
});
setInterval(() => {}, 1 << 30);
