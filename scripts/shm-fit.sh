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
source "$here/tests/integration/rank_launch.sh"
private_devshm "$size" "$0" "$size" "$build"
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for n in 4 7 8; do
  for ch in 1 2; do
    WEFT_NCHANNELS=$ch start_ranks $n "$logs" "$build/perf/all_reduce_perf" -b 1M -e 1M -n 1 -w 1
    wait_ranks
    ok=yes
    for code in "${rank_codes[@]}"; do [[ $code -eq 0 ]] || ok=no; done
    echo "/dev/shm $size: $n ranks, $ch channel(s): fits=$ok $(grep -ho 'cannot reserve [0-9.]* MB' "$logs/rank0.log")"
  done
done
