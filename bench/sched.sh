# bench/sched.sh: the sched and slow suites of bench/run (sourced by it):
# how Node apps are scheduled over their workers by Node's cluster module (its
# round robin and SCHED_NONE), PM2's cluster mode and tend's every --sched
# policy, side by side in one run.
#
# Every config runs bench/apps/sched.js ("hello from node pid P (instance
# I)"; /slow blocks instance 0 for 200 ms) with each of SCHED_WORKERS workers.
# Per config and worker count, after WARM s of untimed per-connection load:
#
#   close      DURATION s of `loadgen -c CONNS`, a new connection per request,
#              then exactly SCHED_SPREAD connections, one request each, counted
#              by the worker that answered (the spread);
#   keepalive  the same with -keepalive: CONNS connections that each carry
#              many requests, so the spread is of requests;
#   slow       (SCHED_SLOW=1, or `bench/run slow` alone) the close load on
#              /fast while a second loadgen asks for /slow SLOW_RATE times a
#              second: what a slow instance does to the fast route.
#
# Raw loadgen reports stay in $RESULTS as KEY.rROUND.{load,spread,stream}.json,
# KEY being CONFIG.wN.LOAD.
#
# Every connection comes from the next of SCHED_SOURCES loopback addresses
# (127.0.1.1 on), as clients on many machines would: `--sched sticky` picks
# the worker by the client's address, so from one address everything would
# reach one worker (the optional tend-sticky-1 config shows it).
#
# Time: about WARM + 3 * DURATION + 15 s per config and worker count; with
# the defaults (7 configs, 2 worker counts) 9-10 min a round (554-609 s
# measured), the slow phase alone about 4 min.

SCHED_SOURCES=${SCHED_SOURCES:-100} # client addresses (loadgen -sources)
SCHED_SPREAD=${SCHED_SPREAD:-10000} # connections (close) or requests (keepalive) counted for the spread
SCHED_WORKERS=${SCHED_WORKERS:-"2 4"}
SCHED_LOADS=${SCHED_LOADS:-"close keepalive"}
SCHED_CONFIGS=${SCHED_CONFIGS:-"node-rr node-none pm2 tend-rr tend-shared tend-sticky tend-reuseport"}
SCHED_SLOW=${SCHED_SLOW:-1} # 1: the slow phase after the loads of every config
SLOW_RATE=${SLOW_RATE:-5}   # /slow requests a second during the slow phase
SCHED_APP=$BENCH/apps/sched.js

# sched_free_port: a port free on every address. free_port checks
# 127.0.0.1 only, and a load from many source addresses leaves TIME_WAIT
# sockets on ports of 127.0.1.x, where a worker's listen() on all
# addresses would fail with EADDRINUSE.
sched_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

# sched_wait URL N SECONDS: wait_pids for N workers, asking from a new
# loopback address each time (under sticky one address sees one worker).
sched_wait() {
  local url=$1 want=$2 deadline=$((SECONDS + $3)) body i=0
  local -A seen=()
  while ((SECONDS < deadline)); do
    i=$((i % 250 + 1))
    if body=$(curl -s --max-time 1 --interface "127.0.1.$i" "$url"); then
      [[ $body =~ pid\ ([0-9]+) ]] && seen[${BASH_REMATCH[1]}]=1
      if ((${#seen[@]} >= want)); then
        WORKER_PIDS=("${!seen[@]}")
        return 0
      fi
    fi
    sleep 0.05
  done
  log "  ! $url: ${#seen[@]} of $want workers answered within $3 s"
  return 1
}

# sched_start CONFIG N TEND_HOME PM2_HOME: start CONFIG with N workers on a
# new port (left in SCHED_PORT, the port owner's pid in MGR_PID) and wait
# until every worker answers.
sched_start() {
  local config=$1 n=$2 th=$3 ph=$4
  SCHED_PORT=$(sched_free_port)
  case $config in
    node-rr | node-none)
      local policy=rr
      [ "$config" = node-none ] && policy=none
      log "== sched: NODE_CLUSTER_SCHED_POLICY=$policy node cluster.js ($n workers)"
      start_direct "$SCHED_PORT" env NODE_CLUSTER_SCHED_POLICY=$policy CLUSTER_WORKERS="$n" \
        CLUSTER_EXEC="$SCHED_APP" node "$CLUSTER_APP"
      MGR_PID=$DIRECT_PID # env execs node: the same pid, the primary
      ;;
    pm2)
      log "== sched: pm2 start sched.js -i $n"
      PM2_HOME=$ph PORT=$SCHED_PORT pm2_ start "$SCHED_APP" -i "$n" --name sched >/dev/null
      MGR_PID=$(cat "$ph/pm2.pid") # the God daemon is the cluster primary
      DAEMON_PIDS+=("$MGR_PID")
      ;;
    tend-*)
      local sched=${config#tend-}
      sched=${sched%-1}
      log "== sched: tend start sched.js -i $n --sched $sched"
      TEND_HOME=$th tend_ start "$SCHED_APP" -i "$n" --sched "$sched" --name sched \
        --env "PORT=$SCHED_PORT" >/dev/null
      MGR_PID=$(tend_daemon_pid "$th")
      ;;
    *) die "unknown SCHED_CONFIGS entry '$config' (node-rr, node-none, pm2, tend-rr, tend-shared, tend-sticky, tend-sticky-1, tend-reuseport)" ;;
  esac
  sched_wait "http://127.0.0.1:$SCHED_PORT/" "$n" 30
}

sched_stop() { # CONFIG TEND_HOME PM2_HOME
  case $1 in
    node-*) stop_direct ;;
    pm2) PM2_HOME=$3 pm2_ delete sched >/dev/null ;;
    tend-*) TEND_HOME=$2 tend_ delete sched >/dev/null ;;
  esac
}

# sched_spread KEY N: the spread of the SCHED_SPREAD answers in this
# round's $RESULTS/KEY.rROUND.spread.json over N workers, appended to sched-spread.tsv as
# KEY, counts busiest first, the busiest's share in %, the largest distance
# of a worker from an even share in %, failures.
sched_spread() {
  local spread
  spread=$(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const want = Number(process.argv[2]);
    const n = (r.served || []).map(s => s.count).sort((a, b) => b - a);
    while (n.length < want) n.push(0);
    const even = (r.ok || 1) / n.length;
    const dev = Math.max(...n.map(c => Math.abs(c - even) / even));
    console.log([n.join("/"), (100 * n[0] / (r.ok || 1)).toFixed(1), (100 * dev).toFixed(1), r.failed].join("\t"))' \
    "$RESULTS/$1.r$SCHED_ROUND.spread.json" "$2")
  printf '%s\t%s\n' "$1" "$spread" >>"$RESULTS/sched-spread.tsv"
  log "    spread: $spread"
}

# sched_measure CONFIG N PORT LOAD: one timed load, then the spread.
sched_measure() {
  local key="$1.w$2.$4" url="http://127.0.0.1:$3/" sources=$SCHED_SOURCES
  [ "$1" = tend-sticky-1 ] && sources=0
  LOADGEN_ARGS="-sources $sources"
  [ "$4" = keepalive ] && LOADGEN_ARGS+=" -keepalive"
  load loadgen "$key" / "$url"
  mv "$RESULTS/$key._.loadgen.json" "$RESULTS/$key.r$SCHED_ROUND.load.json"
  # shellcheck disable=SC2086 # LOADGEN_ARGS is a list of flags
  "$BIN/loadgen" -url "$url" -c "$CONNS" -n "$SCHED_SPREAD" -d 120s $LOADGEN_ARGS \
    -o "$RESULTS/$key.r$SCHED_ROUND.spread.json" 2>/dev/null
  sched_spread "$key" "$2"
  LOADGEN_ARGS=""
}

# sched_slow CONFIG N PORT: the close load on /fast while SLOW_RATE
# requests a second go to /slow (from 4 loops, so that one waiting on the
# blocked instance does not hold the stream up). Appends to sched-slow.tsv:
# key, /slow answers, of them by instance 0, /slow p50 and p99 ms.
sched_slow() {
  local key="$1.w$2.slow" base="http://127.0.0.1:$3" sources=$SCHED_SOURCES gen
  [ "$1" = tend-sticky-1 ] && sources=0
  "$BIN/loadgen" -url "$base/slow" -c 4 -rate "$SLOW_RATE" -d "$((DURATION + 30))s" -sources "$sources" \
    -o "$RESULTS/$key.r$SCHED_ROUND.stream.json" 2>/dev/null &
  gen=$!
  LOADGEN_ARGS="-sources $sources"
  load loadgen "$key" /fast "$base/fast"
  mv "$RESULTS/$key._fast.loadgen.json" "$RESULTS/$key.r$SCHED_ROUND.load.json"
  LOADGEN_ARGS=""
  kill -TERM "$gen"
  wait "$gen" || true
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const slow = (r.served || []).filter(s => / \(instance 0\)$/.test(s.body)).reduce((a, s) => a + s.count, 0);
    console.log([process.argv[2], r.ok, slow, r.latency_ms.p50, r.latency_ms.p99, r.failed].join("\t"))' \
    "$RESULTS/$key.r$SCHED_ROUND.stream.json" "$key" >>"$RESULTS/sched-slow.tsv"
  log "    /slow stream: $(tail -1 "$RESULTS/sched-slow.tsv")"
}

# suite_sched PHASES: every round runs every config with every worker count;
# PHASES is "loads slow" (bench/run sched; SCHED_SLOW=0 drops slow) or "slow"
# (bench/run slow).
suite_sched() {
  local phases=$1 round t0
  LOAD_TSV=sched.tsv
  : >"$RESULTS/$LOAD_TSV"
  : >"$RESULTS/sched-spread.tsv"
  : >"$RESULTS/sched-slow.tsv"
  : >"$RESULTS/sched-rounds.tsv"
  for ((round = 1; round <= ROUNDS; round++)); do
    log "== sched: round $round of $ROUNDS"
    SCHED_ROUND=$round
    t0=$SECONDS
    printf '%s\t%s' "$round" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RESULTS/sched-rounds.tsv"
    sched_round "$phases"
    printf '\t%s\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$((SECONDS - t0))" >>"$RESULTS/sched-rounds.tsv"
  done
  report_sched "$phases"
  LOAD_TSV=http.tsv
}

sched_round() {
  local phases=$1 th ph n c l
  th=$(new_tend_home)
  ph=$(new_pm2_home)
  DAEMON_PIDS+=("$(tend_daemon_pid "$th")")
  for n in $SCHED_WORKERS; do
    for c in $SCHED_CONFIGS; do
      sched_start "$c" "$n" "$th" "$ph"
      # Untimed warm-up (JIT, the daemon's and the kernel's first paths).
      "$BIN/loadgen" -url "http://127.0.0.1:$SCHED_PORT/" -c "$CONNS" -d "${WARM}s" -sources "$SCHED_SOURCES" \
        -o /dev/null 2>/dev/null || true
      if [[ $phases == *loads* ]]; then
        for l in $SCHED_LOADS; do sched_measure "$c" "$n" "$SCHED_PORT" "$l"; done
      fi
      if [[ $phases == *slow* ]]; then sched_slow "$c" "$n" "$SCHED_PORT"; fi
      sched_stop "$c" "$th" "$ph"
    done
  done
  TEND_HOME=$th tend_ kill >/dev/null
  PM2_HOME=$ph pm2_ kill >/dev/null
}

# report_sched PHASES: the tables, medians over rounds; every "x Node RR"
# is the median of the rounds' own ratios (each config against Node's round
# robin with the same workers and load in the same round).
report_sched() {
  local phases=$1 n l
  echo "### Scheduling policies: $SCHED_CONFIGS"
  echo
  echo "\`bench/apps/sched.js\` under each manager. Loads: \`bench/.bin/loadgen -url http://127.0.0.1:PORT/ -c $CONNS"
  echo "-d ${DURATION}s -sources $SCHED_SOURCES\` (close: a new connection per request, from the next of"
  echo "$SCHED_SOURCES loopback addresses) or with \`-keepalive\`, after ${WARM} s of untimed per-connection load;"
  echo "then $SCHED_SPREAD connections (close) or requests (keepalive) counted by the worker that answered"
  echo "(\"spread\", busiest first, one entry a round; \"off even\" is the largest distance of a worker from an"
  echo "even share). ROUNDS=$ROUNDS: medians of the rounds. \"mgr CPU\" is the port owner's CPU (cluster primary,"
  echo "PM2's God daemon, tend's daemon) in % of one core, one entry a round."
  echo
  echo "Load average (1, 5, 15 min) at the start and end of each round, and its length:"
  awk -F'\t' '{ printf "round %s: %s -> %s, %d s\n", $1, $2, $3, $4 }' "$RESULTS/sched-rounds.tsv" | sed 's/^/- /'
  echo
  for n in $SCHED_WORKERS; do
    if [[ $phases == *loads* ]]; then
      for l in $SCHED_LOADS; do
        echo "#### $n workers, $l"
        echo
        sched_table "\\.w$n\\.$l\$" loads "$n"
        echo
      done
    fi
    if [[ $phases == *slow* ]]; then
      echo "#### $n workers, a slow instance: /fast per connection while instance 0 blocks 200 ms on each /slow ($SLOW_RATE/s)"
      echo
      sched_table "\\.w$n\\.slow\$" slow "$n"
      echo
    fi
  done
}

# sched_table REGEX KIND N: one table of the rows whose key matches REGEX.
sched_table() {
  awk -F'\t' -v re="$1" -v kind="$2" -v n="$3" -v order="$SCHED_CONFIGS" '
    BEGIN {
      label["node-rr"] = "Node cluster, RR"; label["node-none"] = "Node cluster, SCHED_NONE"
      label["pm2"] = "`pm2 start -i " n "`"; label["tend-rr"] = "`tend --sched rr`"
      label["tend-shared"] = "`tend --sched shared`"; label["tend-sticky"] = "`tend --sched sticky`"
      label["tend-sticky-1"] = "`tend --sched sticky`, 1 address"; label["tend-reuseport"] = "`tend --sched reuseport`"
      nc = split(order, configs, " ")
    }
    function median(list,   v, m, i, j, x) {
      m = split(list, v, " ")
      if (m == 0) return 0
      for (i = 2; i <= m; i++) { x = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
      return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    }
    function add(s, v, sep) { return s (s == "" ? "" : sep) v }
    $1 !~ re { next }
    { c = $1; sub(/\.w[0-9]+\.[a-z]+$/, "", c) }
    FILENAME ~ /spread/ { sp[c] = add(sp[c], $2, "; "); busy[c] = add(busy[c], $3, " "); off[c] = add(off[c], $4, ", "); f[c] += $5; next }
    FILENAME ~ /slow/ { sn[c] = add(sn[c], $2, ", "); s0[c] = add(s0[c], $3, ", "); sp99[c] = add(sp99[c], $5, " "); f[c] += $6; next }
    {
      r = ++rounds[c]
      rps[c, r] = $4; p99r[c, r] = $6
      rpsl[c] = add(rpsl[c], $4, " "); p50[c] = add(p50[c], $5, " "); p99[c] = add(p99[c], $6, " ")
      f[c] += $7 + $8; mgr[c] = add(mgr[c], $9, ", ")
    }
    END {
      if (kind == "loads") {
        print "| config | req/s | x Node RR | p50 ms | p99 ms | p99 x Node RR | failures | mgr CPU % | spread | busiest % | off even % |"
        print "|---|---|---|---|---|---|---|---|---|---|---|"
      } else {
        print "| config | /fast req/s | x Node RR | /fast p50 ms | /fast p99 ms | p99 x Node RR | failures | mgr CPU % | /slow answered, by instance 0 | /slow p99 ms |"
        print "|---|---|---|---|---|---|---|---|---|---|"
      }
      for (j = 1; j <= nc; j++) {
        c = configs[j]
        if (!(c in rounds)) continue
        x = ""; y = ""
        for (r = 1; r <= rounds[c]; r++) {
          if (rps["node-rr", r] > 0) x = add(x, rps[c, r] / rps["node-rr", r], " ")
          if (p99r["node-rr", r] > 0) y = add(y, p99r[c, r] / p99r["node-rr", r], " ")
        }
        printf "| %s | %.0f | %.2fx | %.2f | %.2f | %.2fx | %d | %s | ", label[c], median(rpsl[c]), median(x),
          median(p50[c]), median(p99[c]), median(y), f[c], (mgr[c] ~ /^[-, ]*$/ ? "-" : mgr[c])
        if (kind == "loads") printf "%s | %.1f | %s |\n", sp[c], median(busy[c]), off[c]
        else printf "%s / %s | %.0f |\n", sn[c], s0[c], median(sp99[c])
      }
    }' "$RESULTS/sched.tsv" "$RESULTS/sched-spread.tsv" "$RESULTS/sched-slow.tsv"
}
