#!/usr/bin/env bash
# Which rank and channel counts fit a /dev/shm of a given size (Docker's
# default is 64m): runs a 1 MiB all-reduce for each in a private tmpfs of
# that size (root; a private mount namespace) and prints what fit.
#   scripts/shm-fit.sh [SIZE] [BUILD_DIR]     e.g. scripts/shm-fit.sh 64m build
set -uo pipefail
size=${1:-64m}
build=$(cd "${2:-build}" && pwd)
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/tests/integration/private_devshm.sh"
private_devshm "$size" "$0" "$size" "$build"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for n in 4 7 8; do
  for ch in 1 2; do
    port=$((20000 + RANDOM % 20000)) pids=()
    for ((r = 0; r < n; ++r)); do
      WEFT_NCHANNELS=$ch WEFT_SOCKET_IFNAME=lo WEFT_RANK=$r WEFT_NRANKS=$n WEFT_COMM_ID=127.0.0.1:$port \
        "$build/perf/all_reduce_perf" -b 1M -e 1M -n 1 -w 1 >"$logs/$r.log" 2>&1 &
      pids+=($!)
    done
    ok=yes
    for p in "${pids[@]}"; do wait "$p" || ok=no; done
    echo "/dev/shm $size: $n ranks, $ch channel(s): fits=$ok $(grep -ho 'cannot reserve [0-9.]* MB' "$logs/0.log")"
  done
done
