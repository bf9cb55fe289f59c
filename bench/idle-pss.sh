#!/usr/bin/env bash
# The idle daemon and keeper's memory: bench/idle-pss.sh TEND_BINARY...
# For each binary (alternate two builds, and run it twice), 4 idle `sleep`
# instances, 15 s idle, then VmRSS and PSS (/proc/<pid>/smaps_rollup) of the
# daemon and of the keeper, its parent. PSS splits the pages the two share.
set -euo pipefail
for bin in "$@"; do
  export TEND_HOME=$(mktemp -d /tmp/idle-pss.XXXX)
  "$bin" start /bin/sleep -i 4 --name nap -- 100000 >/dev/null 2>&1
  sleep 15
  d=$(grep -o 'daemon started pid=[0-9]*' "$TEND_HOME/tend.log" | tail -1 | cut -d= -f2)
  k=$(awk '{print $4}' "/proc/$d/stat")
  pd=$(awk '/^Pss:/{print $2}' "/proc/$d/smaps_rollup")
  pk=$(awk '/^Pss:/{print $2}' "/proc/$k/smaps_rollup")
  rd=$(awk '/^VmRSS:/{print $2}' "/proc/$d/status")
  echo "$bin: daemon RSS ${rd} kB, PSS ${pd} kB; keeper PSS ${pk} kB; both $((pd + pk)) kB"
  "$bin" kill >/dev/null 2>&1
  rm -rf "$TEND_HOME"
done
