#!/usr/bin/env bash
# Starts ranks as plain processes (no mpirun): each finds the job through
# WEFT_RANK, WEFT_NRANKS and WEFT_COMM_ID, as any launcher could set them.
#   env_launch.sh [--separate-nodes] BINARY NRANKS [ARGS...]
# --separate-nodes gives every rank its own WEFT_HOSTID, so ranks talk
# through the net transport (over loopback). With WEFT_SOCKET_FAMILY=AF_INET6
# the root listens on [::1]. Prints rank WEFT_LAUNCH_SHOW_RANK's output (0).
set -euo pipefail
separate=0
if [[ ${1:-} == --separate-nodes ]]; then separate=1; shift; fi
binary=$1; nranks=$2; shift 2
port=$((20000 + RANDOM % 20000))
if [[ ${WEFT_SOCKET_FAMILY:-} == AF_INET6 ]]; then root="[::1]:$port"; else root="127.0.0.1:$port"; fi
export WEFT_SOCKET_IFNAME=${WEFT_SOCKET_IFNAME:-lo}
pids=()
for ((r = 0; r < nranks; ++r)); do
  hostid=${WEFT_HOSTID:-}
  if [[ $separate -eq 1 ]]; then hostid=loopback-node-$r; fi
  WEFT_HOSTID=$hostid WEFT_RANK=$r WEFT_NRANKS=$nranks WEFT_COMM_ID=$root "$binary" "$@" \
    > "${TMPDIR:-/tmp}/weft_env_launch_$$_$r.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
cat "${TMPDIR:-/tmp}/weft_env_launch_$$_${WEFT_LAUNCH_SHOW_RANK:-0}.log"
rm -f "${TMPDIR:-/tmp}"/weft_env_launch_$$_*.log
exit $status
