#!/usr/bin/env bash
# A /dev/shm too small for the node's segment (4 ranks, 16.8 MB of FIFOs, in
# an 8 MiB tmpfs): every rank's init fails with an error, none dies of
# SIGBUS, the leader says how much was needed, how much is free and what to
# change; smaller FIFOs then fit and verify. Nothing is left in /dev/shm.
# Runs in a private mount namespace (root); skipped (77) where none can be made.
set -uo pipefail
perf=$1
source "$(dirname "$0")/private_devshm.sh"
private_devshm 8m "$0" "$@"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { cat "$tmp"/rank*.log; echo "FAIL: $*"; exit 1; }

source "$(dirname "$0")/rank_launch.sh"
launch() {
  start_ranks 4 "$tmp" "$perf" -b 16M -e 16M -n 1 -w 1
  wait_ranks
  codes=("${rank_codes[@]}")
}

launch
for ((r = 0; r < 4; ++r)); do
  code=${codes[$r]}
  [[ $code -ne 0 ]] || fail "rank $r succeeded in a /dev/shm too small for it"
  [[ $code -lt 128 ]] || fail "rank $r died of signal $((code - 128))"
done
grep -qE "cannot reserve 16\.[0-9] MB of shared memory .* in /dev/shm \([0-9.]+ MB free of 8\.4 MB\)" "$tmp/rank0.log" ||
  fail "rank 0 does not say how much was needed and how much is free"
grep -q "WEFT_NSLOTS=8" "$tmp/rank0.log" && grep -q -- "--shm-size" "$tmp/rank0.log" ||
  fail "rank 0 does not say what to change"
grep -q "rank 0 could not create the node's 16\.[0-9] MB of shared memory" "$tmp/rank1.log" ||
  fail "rank 1 does not name the leader's failure"
[[ -z $(ls /dev/shm) ]] || fail "left in /dev/shm: $(ls /dev/shm)"

WEFT_NSLOTS=2 WEFT_BUFFSIZE=65536 launch
for ((r = 0; r < 4; ++r)); do [[ ${codes[$r]} -eq 0 ]] || fail "rank $r failed with smaller FIFOs (status ${codes[$r]})"; done
grep -q "Out of bounds values : 0 OK" "$tmp/rank0.log" || fail "no verified result with smaller FIFOs"
[[ -z $(ls /dev/shm) ]] || fail "left in /dev/shm: $(ls /dev/shm)"
echo "too small /dev/shm: a clear init error on every rank, no SIGBUS; smaller FIFOs fit"
