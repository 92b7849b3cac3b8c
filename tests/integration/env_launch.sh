#!/usr/bin/env bash
# Starts ranks as plain processes (no mpirun): each finds the job through
# WEFT_RANK, WEFT_NRANKS and WEFT_COMM_ID, as any launcher could set them.
set -euo pipefail
binary=$1; nranks=$2; shift 2
port=$((20000 + RANDOM % 20000))
pids=()
for ((r = 0; r < nranks; ++r)); do
  WEFT_RANK=$r WEFT_NRANKS=$nranks WEFT_COMM_ID=127.0.0.1:$port "$binary" "$@" > "${TMPDIR:-/tmp}/weft_env_launch_$$_$r.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
cat "${TMPDIR:-/tmp}/weft_env_launch_$$_0.log"
rm -f "${TMPDIR:-/tmp}"/weft_env_launch_$$_*.log
exit $status
