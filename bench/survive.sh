# bench/survive.sh: the survive suite of bench/run (sourced by it): the
# manager's daemon SIGKILLed, and the manager updated, under load.

SURVIVE_CONNS=${SURVIVE_CONNS:-4} # loadgen loops
SURVIVE_PRE=${SURVIVE_PRE:-3}     # seconds of load before the kill or the update
SURVIVE_POST=${SURVIVE_POST:-3}   # seconds of load after it

# live_pids MGR HOME [TEND]: the pids of the online instances, as the
# manager's listing says, sorted, space-separated ("" when it lists none).
# TEND is the tend binary to ask (after an update, the new one).
live_pids() {
  {
    case $1 in
      tend) TEND_HOME=$2 timeout 20 "${3:-$BIN/tend}" ls --json ;;
      pm2) PM2_HOME=$2 timeout 20 "$NMBIN/pm2" jlist ;;
    esac 2>/dev/null || true
  } | node -e '
    let s = ""; process.stdin.on("data", d => s += d).on("end", () => {
      let l = []; try { l = JSON.parse(s) } catch {}
      console.log(l.filter(p => (p.status || p.pm2_env.status) === "online").map(p => p.pid).sort().join(" ")) })'
}

# survive_one MGR ACTION: boot.js, 2 instances, under loadgen (a new
# connection per request); after SURVIVE_PRE s the action: kill (SIGKILL
# the daemon) or update (hand over to another build: tend update with a
# build of another version, pm2 update). Appends a row to survive.tsv:
# mgr action ok failed refused reset eof timeout other listed_after alive_after wall
survive_one() {
  local mgr=$1 action=$2 port home tag lg dpid t0 listed="" wall=- alive=0 p before cli=$BIN/tend
  [ "$action" = update ] && cli=$BIN/tend-next
  port=$(free_port)
  tag=survive-$mgr-$action
  log "== survive: $mgr, $action"
  case $mgr in
    tend)
      home=$(new_tend_home)
      TEND_HOME=$home tend_ start "$BOOT_APP" -i 2 --name b --port "$port" >"$RESULTS/$tag.start.txt"
      dpid=$(tend_daemon_pid "$home")
      ;;
    pm2)
      home=$(new_pm2_home)
      PM2_HOME=$home PORT=$port pm2_ start "$BOOT_APP" -i 2 --name b >"$RESULTS/$tag.start.txt"
      dpid=$(cat "$home/pm2.pid")
      ;;
  esac
  DAEMON_PIDS+=("$dpid")
  wait_pids "http://127.0.0.1:$port/" 2 30
  before=$(printf '%s\n' "${WORKER_PIDS[@]}" | sort | tr '\n' ' ' | sed 's/ $//')
  "$BIN/loadgen" -url "http://127.0.0.1:$port/" -c "$SURVIVE_CONNS" -d 120s -o "$RESULTS/$tag.json" &
  lg=$!
  sleep "$SURVIVE_PRE"
  t0=$EPOCHREALTIME
  set +e
  case $mgr-$action in
    *-kill) kill -KILL "$dpid" ;;
    tend-update) TEND_HOME=$home timeout 120 "$BIN/tend-next" update >"$RESULTS/$tag.update.txt" 2>&1 ;;
    pm2-update) PM2_HOME=$home PORT=$port timeout 120 "$NMBIN/pm2" update >"$RESULTS/$tag.update.txt" 2>&1 ;;
  esac
  set -e
  # Until the listing shows the same two instances online again, for 20 s
  # at most; whatever it shows then is the answer.
  local deadline=$((SECONDS + 20)) now=""
  while ((SECONDS < deadline)); do
    now=$(live_pids "$mgr" "$home" "$cli")
    if [ "$now" = "$before" ]; then
      wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f s", b - a }')
      break
    fi
    sleep 0.02
  done
  if [ "$wall" = - ]; then
    listed="never within 20 s (lists ${now:-nothing})"
  else
    listed="after $wall"
  fi
  sleep "$SURVIVE_POST"
  kill -INT "$lg"
  wait "$lg" || true
  for p in $before; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const f = k => r.fail[k] || 0;
    console.log([process.argv[2], process.argv[3], r.ok, r.failed, f("refused"), f("reset"), f("eof"), f("timeout"),
      f("non200") + f("other"), process.argv[4], process.argv[5]].join("\t"))
  ' "$RESULTS/$tag.json" "$mgr" "$action" "$listed" "$alive/2" >>"$RESULTS/survive.tsv"
  log "    $(tail -1 "$RESULTS/survive.tsv")"
  case $mgr in
    tend) TEND_HOME=$home "$cli" kill >/dev/null 2>&1 || true ;;
    pm2) PM2_HOME=$home pm2_ kill >/dev/null 2>&1 || true ;;
  esac
  # What the manager no longer knows of (PM2's orphans) goes too.
  for p in $before; do kill -KILL "$p" 2>/dev/null || true; done
}

suite_survive() {
  log "== survive: a build of another version for tend update"
  CGO_ENABLED=0 go build -ldflags "-X github.com/tendhq/tend.Version=bench-next" -o "$BIN/tend-next" ./cmd/tend
  : >"$RESULTS/survive.tsv"
  local a
  for a in kill update; do
    survive_one pm2 "$a"
    survive_one tend "$a"
  done
  echo "### The daemon killed, and the manager updated, under load"
  echo
  echo "\`internal/cli/testdata/boot.js\`, 2 instances (\`pm2 start boot.js -i 2\` with PORT / \`tend start boot.js -i 2 --port P\`),"
  echo "under bench/loadgen: $SURVIVE_CONNS loops, a new connection per request, 5 s timeout, no retries. After $SURVIVE_PRE s:"
  echo "kill = SIGKILL the daemon (PM2's God daemon, pid in \$PM2_HOME/pm2.pid; tend's from \`tend ping\`);"
  echo "update = \`pm2 update\`, or \`tend update\` run with a build of another version. The load goes on $SURVIVE_POST s after."
  echo "\"listed\" is how long until the manager's listing (\`pm2 jlist\`, \`tend ls --json\`) shows the same two instances online"
  echo "again; \"alive\" how many of the two first pids still run at the end."
  echo
  echo "| manager | action | ok | failed | refused | reset | eof | timeout | other | listed | alive |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' '{ printf "| %s | %s | %s | **%s** | %s | %s | %s | %s | %s | %s | %s |\n",
    ($1 == "pm2" ? "PM2" : "tend"), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 }' "$RESULTS/survive.tsv"
  echo
}
