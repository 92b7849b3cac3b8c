#!/usr/bin/env bash
# Two sites of two nodes (network namespaces, one rank each, WEFT_SITEID set
# by netns.sh run --sites 2), the traffic between the sites limited to
# 1 Gbit/s and delayed 5 ms each way (netns.sh wan: netem, or else the delay
# line), and every collective forced onto the hierarchical plans, which then
# group the ranks by site: every result must be exact, rank 0's ring must
# say it spans 2 sites with the site links crossed once each way, and a
# round trip across the sites must take the 10 ms.
set -euo pipefail
netns=$1; name=$2; rank=$3
export WEFT_DELAY_LINE=${4:-}
trap 'for n in 0 1 2 3; do "$netns" unshape "$name" "$n"; done' EXIT
"$netns" wan "$name" 4 2 5ms 1gbit
# A connection refused costs one round trip (SYN out, RST back): the fastest
# of five, from node 0 to a node of its own site and of the other.
rtt() {
  ip netns exec "$name-0" python3 -c '
import socket, sys, time
best = 1e9
for _ in range(5):
    s = socket.socket()
    t = time.perf_counter()
    try:
        s.connect((sys.argv[1], 9))
    except OSError:
        pass
    best = min(best, time.perf_counter() - t)
    s.close()
print("%.2f" % (best * 1e3))' "$1"
}
near=$(rtt 10.231.0.2); far=$(rtt 10.231.0.3)
echo "round trip from node 0: to node 1 (same site) $near ms, to node 2 (other site) $far ms"
python3 -c "import sys; sys.exit(0 if float('$far') >= 9.5 and float('$near') < 5 else 1)" ||
  { echo "the site link's round trip is not the 10 ms asked for"; exit 1; }
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
