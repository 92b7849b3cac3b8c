#!/usr/bin/env bash
# Between two nodes (network namespaces on this machine, see netns.sh), side
# by side in one run: the raw single-connection TCP stream and round trip,
# weft's sendrecv_perf at 64 MiB and all_reduce_perf from 8 B to 256 MiB.
# Usage (root, from the repository, after scripts/setup.sh): scripts/bench-netns.sh [build dir]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
name=wbench$$
trap '"$here/netns.sh" down $name' EXIT
"$here/netns.sh" up $name 2
run() { "$here/netns.sh" run $name 2 1 -- "$@" | sed -n '/^=== rank 1/q;p' | grep -v '^=== '; }
run "$build/perf/tcp_stream" -b 67108864 -n 20
run "$build/perf/sendrecv_perf" -b 64M -e 64M -n 10 -w 2
run "$build/perf/all_reduce_perf" -b 8 -e 8 -n 5000 -w 200
run "$build/perf/all_reduce_perf" -b 64K -e 256M -f 16 -n 4 -w 1
run "$build/perf/tcp_stream" -b 67108864 -n 20
