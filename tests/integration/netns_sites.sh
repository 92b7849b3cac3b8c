#!/usr/bin/env bash
# Two sites of two nodes (network namespaces, one rank each, WEFT_SITEID set
# by netns.sh run --sites 2), the traffic between the sites limited to
# 1 Gbit/s (netns.sh wan; its delay too where the kernel has netem), and
# every collective forced onto the hierarchical plans, which then group the
# ranks by site: every result must be exact, and rank 0's ring must say it
# spans 2 sites with the site links crossed once each way.
set -euo pipefail
netns=$1; name=$2; rank=$3
trap 'for n in 0 1 2 3; do "$netns" unshape "$name" "$n"; done' EXIT
"$netns" wan "$name" 4 2 5ms 1gbit
out=$(WEFT_ALGO=hierarchical WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=GRAPH \
  "$netns" run "$name" 4 1 --sites 2 -- "$rank" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -v "^weft" | head -20
echo "$out" | grep -q "ring over 4 ranks on 4 node(s) in 2 sites: 0(node 0, site 0, numa [0-9-]*) 1(node 1, site 0, numa [0-9-]*) 2(node 2, site 1, numa [0-9-]*) 3(node 3, site 1" ||
  { echo "rank 0 did not report the ring over 2 sites"; echo "$out" | grep "ring over"; exit 1; }
for r in 0 1 2 3; do
  echo "$out" | grep -q "^rank $r of 4: 2400 collective cases and the send/recv patterns exact$" ||
    { echo "rank $r did not report exact results"; exit 1; }
done
echo "2 sites x 2 nodes: every collective exact on the site-grouped hierarchical plans"
