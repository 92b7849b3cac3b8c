#!/usr/bin/env bash
# A link limited with tc tbf slows the ring to that link's rate; nothing
# fails. Runs all_reduce_perf on 2 namespaces x 1 rank, unshaped and with
# node 0's egress limited to RATE, and checks the shaped bus bandwidth lies
# between 30% and 115% of RATE and below the unshaped one.
set -euo pipefail
netns=$1; name=$2; perf=$3
rate_mbit=${RATE_MBIT:-400}
trap '"$netns" unshape "$name" 0' EXIT
busbw() {  # out-of-place bus bandwidth (GB/s) from the time column; 2 ranks: busbw = algbw
  "$netns" run "$name" 2 1 -- "$perf" -b 8M -e 8M -n 4 -w 1 | tee /dev/stderr |
    awk '$1 == 8388608 {printf "%.4f\n", $1 / $6 / 1000; exit}'
}
free=$(busbw)
"$netns" shape "$name" 0 "${rate_mbit}mbit"
shaped=$(busbw)
rate_gbs=$(awk -v m="$rate_mbit" 'BEGIN {print m / 8000}')
echo "unshaped busbw ${free} GB/s; node 0 limited to ${rate_mbit} Mbit/s (${rate_gbs} GB/s): busbw ${shaped} GB/s"
awk -v s="$shaped" -v f="$free" -v r="$rate_gbs" 'BEGIN {
  if (s < 0.3 * r || s > 1.15 * r) { print "shaped busbw outside 30%..115% of the link rate"; exit 1 }
  if (s >= f) { print "shaping did not slow the ring"; exit 1 }
  print "ring runs at " int(100 * s / r) "% of the shaped link" }'
