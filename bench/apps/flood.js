// The logs suite's app: after FLOOD_DELAY_MS (2000) it writes 90-character
// lines to stdout, one write per line as console.log would, as fast as the
// pipe takes them, for FLOOD_SECONDS (10); then it writes how many lines it
// wrote to FLOOD_COUNT_FILE and idles (so no manager restarts it).
// FLOOD_RATE=N caps it at N lines/s (written every millisecond, as a busy
// server's logging would arrive) instead of as fast as possible.
const fs = require('node:fs');
const delay = Number(process.env.FLOOD_DELAY_MS || 2000);
const secs = Number(process.env.FLOOD_SECONDS || 10);
const rate = Number(process.env.FLOOD_RATE || 0);
const pad = ' the quick brown fox jumps over the lazy dog, a log line of ninety chars';
let n = 0;

function paced(start, end) {
  const now = Date.now();
  const due = Math.min(now, end) - start;
  while (n < (due * rate) / 1000) {
    n++;
    process.stdout.write(String(n).padStart(10, '0') + pad + ' .......\n');
  }
  if (now >= end) done();
  else setTimeout(() => paced(start, end), 1);
}

function flood(end) {
  // Batches of 1,000 writes between event-loop turns; wait for 'drain'
  // when the pipe is full, so what is counted was accepted by the pipe.
  while (Date.now() < end) {
    for (let i = 0; i < 1000; i++) {
      n++;
      // 10 digits + 80 characters = 90, then "\n"
      if (!process.stdout.write(String(n).padStart(10, '0') + pad + ' .......\n')) {
        process.stdout.once('drain', () => flood(end));
        return;
      }
    }
    if (Date.now() >= end) break;
    setImmediate(() => flood(end));
    return;
  }
  if (Date.now() >= end) done();
}

let finished = false;
function done() {
  if (finished) return;
  finished = true;
  const write = () => fs.writeFileSync(process.env.FLOOD_COUNT_FILE || '/dev/null', `${n}\n`);
  // Everything is handed to the pipe once the last write's callback runs.
  process.stdout.write('', write);
}

setTimeout(() => {
  const start = Date.now();
  if (rate > 0) paced(start, start + secs * 1000);
  else flood(start + secs * 1000);
}, delay);
setInterval(() => {}, 60000);
