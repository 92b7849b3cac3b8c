#!/usr/bin/env bash
# WEFT_DEBUG_SUBSYS=TUNE prints each decision once per (collective, size
# class), on rank 0 only, with every candidate's predicted time: a sweep of
# 3 threads over 8 B..64 KiB in steps of 2 (14 classes, each called many
# times, in and out of place) has exactly 14 AllReduce lines, each with the
# four all-reduce algorithms of one node and the winner.
set -euo pipefail
perf=$1
out=$(WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=TUNE "$perf" -t 3 -b 8 -e 64K -f 2 -n 3 -w 2 2>&1)
lines=$(echo "$out" | grep -E "AllReduce of [0-9]+ B and up \(3 ranks, 1 node\(s\)\): " || true)
count=$(echo -n "$lines" | grep -c . || true)
[ "$count" -eq 14 ] || { echo "FAIL: $count decision lines, expected 14"; echo "$out" | grep "and up"; exit 1; }
for algo in oneshot twoshot ring tree; do
  n=$(echo "$lines" | grep -c " $algo/1 [0-9.]* us" || true)
  [ "$n" -eq 14 ] || { echo "FAIL: $algo is a candidate in $n of 14 lines"; exit 1; }
done
n=$(echo "$lines" | grep -cE " -> (oneshot|twoshot|ring|tree)/1$" || true)
[ "$n" -eq 14 ] || { echo "FAIL: $n of 14 lines name a winner"; exit 1; }
echo "$out" | grep -q "Out of bounds values : 0 OK" || { echo "FAIL: wrong results"; exit 1; }
echo "PASS: 14 decisions, each logged once with its candidates"
