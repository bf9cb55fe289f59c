// Node's own cluster primary, the oracle of the conformance suite: it forks
// $WORKERS workers of cases.cjs with the scheduling policy $SCHED ('rr' or
// 'none') and stays until it is killed. Workers that exit are not replaced.
'use strict';
const cluster = require('cluster');
const path = require('path');

cluster.schedulingPolicy = process.env.SCHED === 'none' ? cluster.SCHED_NONE : cluster.SCHED_RR;
cluster.setupPrimary({ exec: path.join(__dirname, 'cases.cjs') });
for (let i = 0; i < +process.env.WORKERS; i++) cluster.fork();
setInterval(() => {}, 1 << 30);
