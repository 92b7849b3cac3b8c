#!/usr/bin/env bash
# The main job: set up, build, then a 4-rank all-reduce sweep on host memory
# (8 B to 256 MiB) with Open MPI's MPI_Allreduce timed in the same run on the
# same buffers (-C 1) and the machine's memory-bandwidth bound (-B 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WEFT_SOCKET_IFNAME=${WEFT_SOCKET_IFNAME:-lo}
mpirun_args=(--oversubscribe --bind-to none -x WEFT_SOCKET_IFNAME)
[ "$(id -u)" -eq 0 ] && mpirun_args+=(--allow-run-as-root)
set -x
mpirun "${mpirun_args[@]}" -np "${RANKS:-4}" build/perf/all_reduce_perf -b 8 -e 256M -f 2 -n 30 -w 5 -C 1 -B 1
set +x
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "bench: a GPU is present, but this version of weft has no CUDA executor yet; only host memory was measured"
fi
