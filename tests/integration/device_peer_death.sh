#!/usr/bin/env bash
# A GPU communicator across nodes (the emulated device, one rank per node
# over loopback) loses a rank mid-run: the survivors must fail with the error
# that names it, within seconds, not hang or wait out the timeout.
#   device_peer_death.sh PERF_BINARY
set -euo pipefail
binary=$1
port=$((20000 + RANDOM % 20000))
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
for r in 0 1 2; do
  WEFT_DEVICE=emulated WEFT_TIMEOUT=60 WEFT_SOCKET_IFNAME=lo WEFT_HOSTID=death-node-$r WEFT_RANK=$r WEFT_NRANKS=3 \
    WEFT_COMM_ID=127.0.0.1:$port "$binary" -g 1 -b 1M -e 64M -f 2 -n 500 -w 1 >"$logs/$r.log" 2>&1 &
  pids+=($!)
done
# Kill rank 2 once the sweep is under way (its first row printed by rank 0).
for _ in $(seq 1 300); do
  grep -q "^ *1048576 " "$logs/0.log" && break
  sleep 0.1
done
grep -q "^ *1048576 " "$logs/0.log" || { echo "the sweep did not start"; cat "$logs/0.log"; kill -9 "${pids[@]}"; exit 1; }
kill -9 "${pids[2]}"
start=$(date +%s)
status=0
for r in 0 1; do
  if wait "${pids[$r]}"; then
    echo "rank $r: exited 0 after its peer died"
    status=1
  fi
  if ! grep -q "the connection to rank 2 failed" "$logs/$r.log"; then
    echo "rank $r: no error naming rank 2:"
    tail -5 "$logs/$r.log"
    status=1
  fi
done
elapsed=$(($(date +%s) - start))
echo "survivors failed ${elapsed} s after rank 2 was killed (WEFT_TIMEOUT=60)"
grep -h "failed:" "$logs/0.log" | cut -c1-300
if ((elapsed > 20)); then
  echo "too slow: the bridge should notice the broken connection at once"
  status=1
fi
exit $status
