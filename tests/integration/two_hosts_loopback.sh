#!/usr/bin/env bash
# Two ranks that believe they are on two nodes (different WEFT_HOSTID), so
# they talk through the net transport, over loopback; extra environment
# (e.g. WEFT_SOCKET_FAMILY=AF_INET6) is passed in by the caller.
set -euo pipefail
binary=$1; shift
port=$((20000 + RANDOM % 20000))
if [[ ${WEFT_SOCKET_FAMILY:-} == AF_INET6 ]]; then root="[::1]:$port"; else root="127.0.0.1:$port"; fi
pids=()
for r in 0 1; do
  WEFT_SOCKET_IFNAME=lo WEFT_HOSTID=loopback-node-$r WEFT_RANK=$r WEFT_NRANKS=2 WEFT_COMM_ID=$root \
    "$binary" "$@" > "${TMPDIR:-/tmp}/weft_two_hosts_$$_$r.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
cat "${TMPDIR:-/tmp}/weft_two_hosts_$$_0.log"
rm -f "${TMPDIR:-/tmp}"/weft_two_hosts_$$_*.log
exit $status
