#!/usr/bin/env bash
# How much gradient communication the bucketer hides, side by side in one run:
# examples/train_mlp with the bucketer and with --no-overlap (one all-reduce
# after backward), on
#   - two nodes (network namespaces, see netns.sh), one rank each, the link
#     shaped to 2 Gbit/s each way so that communication is bound by the wire;
#   - shared memory, 2 and 4 ranks on this machine.
# Prints rank 0's averages of each run (DDP's definitions; see train_mlp.cpp).
# "bucketer, nice 10" runs forward and backward at nice 10: the two cores
# are busy computing, and weft's threads (at nice 0) then get a core as soon
# as data arrives instead of a scheduler timeslice later.
# Usage (root, after scripts/setup.sh): scripts/bench-overlap.sh [build dir] [train_mlp args...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
shift || true
bin=$build/examples/train_mlp
# Default model: 2.1 M parameters (8.3 MB of fp32 gradients) in 5 buckets;
# batch 768 makes backward compute about twice the 2 Gbit/s wire time.
model=(--steps 25 --warmup 5 --batch 768 --first-bucket-kb 256 --bucket-cap-kb 2048 --quiet "$@")
summary() { grep -E '^# (train_mlp|[0-9]+ buckets|averages|weights)'; }

echo "### $(date -u +%FT%TZ) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
name=wovl$$
trap '"$here/netns.sh" down $name' EXIT
"$here/netns.sh" up $name 2
"$here/netns.sh" shape $name 0 2gbit
"$here/netns.sh" shape $name 1 2gbit
modes=("bucketer" "bucketer, nice 10" "no-overlap")
flags() {
  case $1 in
    "bucketer, nice 10") echo --compute-nice 10 ;;
    no-overlap) echo --no-overlap ;;
  esac
}
for mode in "${modes[@]}"; do
  read -ra extra <<<"$(flags "$mode")"
  echo "## two nodes, 1 rank each, 2 Gbit/s link: $mode"
  "$here/netns.sh" run $name 2 1 -- "$bin" "${model[@]}" "${extra[@]}" | sed -n '/^=== rank 1/q;p' | summary
done
for n in 2 4; do
  for mode in "${modes[@]}"; do
    read -ra extra <<<"$(flags "$mode")"
    echo "## shared memory, $n ranks: $mode"
    "$bin" --ranks $n "${model[@]}" "${extra[@]}" | summary
  done
done
