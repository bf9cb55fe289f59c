# bench/sched.sh: the sched suite of bench/run (sourced by it): tend's
# scheduling policies against Node's cluster module (its round robin), a new
# connection per request, 2 workers.
#
# Each config serves examples/node/index.js's "/" (a short answer that names
# the worker's pid). Two loads per config: DURATION s of `loadgen -c CONNS`
# for req/s and latency, then exactly SCHED_SPREAD connections, one request
# each, for the spread over the workers. Every connection comes from the next
# of SCHED_SOURCES loopback addresses (127.0.1.1 on), as clients on many
# machines would: `--sched sticky` picks the worker by the client's address,
# so from one address everything would reach one worker (the "sticky, 1
# address" row shows it).

SCHED_SOURCES=${SCHED_SOURCES:-100} # client addresses (loadgen -sources)
SCHED_SPREAD=${SCHED_SPREAD:-10000} # connections counted for the spread

# sched_free_port: a port free on every address. free_port checks
# 127.0.0.1 only, and a load from many source addresses leaves TIME_WAIT
# sockets on ports of 127.0.1.x, where a worker's listen() on all
# addresses would fail with EADDRINUSE.
sched_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

# sched_wait URL SECONDS: wait_pids for 2 workers, asking from a new
# loopback address each time (under sticky one address sees one worker).
sched_wait() {
  local url=$1 deadline=$((SECONDS + $2)) body i=0
  local -A seen=()
  while ((SECONDS < deadline)); do
    i=$((i % 250 + 1))
    if body=$(curl -s --max-time 1 --interface "127.0.1.$i" "$url"); then
      [[ $body =~ pid\ ([0-9]+) ]] && seen[${BASH_REMATCH[1]}]=1
      if ((${#seen[@]} >= 2)); then
        WORKER_PIDS=("${!seen[@]}")
        return 0
      fi
    fi
    sleep 0.05
  done
  log "  ! $url: ${#seen[@]} of 2 workers answered within $2 s"
  return 1
}

# sched_measure CONFIG PORT SOURCES: the timed load, then the spread.
sched_measure() {
  local config=$1 url="http://127.0.0.1:$2/" sources=$3
  LOADGEN_ARGS="-sources $sources"
  "$BIN/loadgen" -url "$url" -c "$CONNS" -d "${WARM}s" $LOADGEN_ARGS -o /dev/null 2>/dev/null || true # untimed warm-up
  load loadgen "$config" / "$url"
  "$BIN/loadgen" -url "$url" -c "$CONNS" -n "$SCHED_SPREAD" -d 120s $LOADGEN_ARGS -o "$RESULTS/$config.spread.json" 2>/dev/null
  local spread
  spread=$(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const n = (r.served || []).map(s => s.count).sort((a, b) => b - a);
    while (n.length < 2) n.push(0);
    console.log(n.join("/") + "\t" + (100 * n[0] / (r.ok || 1)).toFixed(1) + "\t" + r.failed)' "$RESULTS/$config.spread.json")
  printf '%s\t%s\n' "$config" "$spread" >>"$RESULTS/sched-spread.tsv"
  log "    spread over $SCHED_SPREAD connections: $spread"
  LOADGEN_ARGS=""
}

suite_sched() {
  local round
  LOAD_TSV=sched.tsv
  : >"$RESULTS/$LOAD_TSV"
  : >"$RESULTS/sched-spread.tsv"
  for ((round = 1; round <= ROUNDS; round++)); do
    log "== sched: round $round of $ROUNDS"
    sched_round
  done
  report_sched
  LOAD_TSV=http.tsv
}

sched_round() {
  local port th tpid sched
  th=$(new_tend_home)
  tpid=$(tend_daemon_pid "$th")
  DAEMON_PIDS+=("$tpid")

  log "== sched: node cluster.js (2 workers, Node's round robin)"
  port=$(sched_free_port)
  start_direct "$port" node "$CLUSTER_APP"
  MGR_PID=$DIRECT_PID
  wait_pids "http://127.0.0.1:$port/" 2 20
  sched_measure node-cluster "$port" "$SCHED_SOURCES"
  stop_direct

  for sched in rr shared sticky reuseport; do
    log "== sched: tend start index.js -i 2 --sched $sched"
    port=$(sched_free_port)
    TEND_HOME=$th tend_ start "$NODE_APP" -i 2 --sched "$sched" --name "web-$sched" --env "PORT=$port" >/dev/null 2>&1
    MGR_PID=$tpid
    sched_wait "http://127.0.0.1:$port/" 30
    sched_measure "tend-$sched" "$port" "$SCHED_SOURCES"
    if [ "$sched" = sticky ]; then
      sched_measure tend-sticky-1 "$port" 0
    fi
    TEND_HOME=$th tend_ delete "web-$sched" >/dev/null
  done
  TEND_HOME=$th tend_ kill >/dev/null
}

report_sched() {
  echo "### Scheduling policies, a new connection per request: 2 workers, loadgen -c $CONNS, ${DURATION} s per load, /"
  echo
  echo "\`bench/.bin/loadgen -url http://127.0.0.1:PORT/ -c $CONNS -d ${DURATION}s -sources $SCHED_SOURCES\` (each request"
  echo "on a new connection, from the next of $SCHED_SOURCES loopback addresses), after ${WARM} s of untimed load;"
  echo "then $SCHED_SPREAD connections, one request each, counted by the worker that answered (\"spread\","
  echo "busiest first; \"busiest\" is its share). \"x Node RR\" is req/s divided by \`node cluster.js\`'s"
  echo "(Node's cluster module, round robin) in the same run; with ROUNDS=n, medians of the n rounds."
  echo "\"mgr CPU\" is the CPU of the process that owns the port (cluster primary, tend daemon) in % of one core."
  echo
  awk -F'\t' '
    BEGIN {
      label["node-cluster"] = "`node cluster.js` (Node RR)"; label["tend-rr"] = "`tend --sched rr`"
      label["tend-shared"] = "`tend --sched shared`"; label["tend-sticky"] = "`tend --sched sticky`"
      label["tend-sticky-1"] = "`tend --sched sticky`, 1 address"; label["tend-reuseport"] = "`tend --sched reuseport`"
    }
    function median(list,   v, m, i, j, x) {
      m = split(list, v, " ")
      for (i = 2; i <= m; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    FILENAME ~ /spread/ { sp[$1] = sp[$1] (sp[$1] == "" ? "" : ", ") $2; busy[$1] = busy[$1] " " $3; sf[$1] += $4; next }
    {
      c = $1
      rps[c] = rps[c] " " $4; p50[c] = p50[c] " " $5; p99[c] = p99[c] " " $6
      e[c] += $7 + $8
      mgr[c] = mgr[c] (mgr[c] == "" ? "" : ", ") $9
      if (!(c in seen)) { seen[c] = 1; configs[++nc] = c }
    }
    END {
      print "| config | req/s | x Node RR | p50 ms | p99 ms | p99 x Node RR | failures | mgr CPU % | spread | busiest % |"
      print "|---|---|---|---|---|---|---|---|---|---|"
      for (j = 1; j <= nc; j++) {
        c = configs[j]
        printf "| %s | %.0f | %.2fx | %.2f | %.2f | %.2fx | %d | %s | %s | %s |\n",
          label[c], median(rps[c]), median(rps[c]) / median(rps["node-cluster"]), median(p50[c]), median(p99[c]),
          median(p99[c]) / median(p99["node-cluster"]), e[c] + sf[c], (mgr[c] ~ /^[-, ]*$/ ? "-" : mgr[c]), sp[c], median(busy[c])
      }
    }' "$RESULTS/$LOAD_TSV" "$RESULTS/sched-spread.tsv"
  echo
}
