#!/usr/bin/env bash
# weft-sim --trace writes what WEFT_TRACE_FILE writes for a real run: a
# Chrome-trace JSON per rank, the call on lane 0 (naming the algorithm),
# its steps on the channel's lane inside it, adding up to what a 2-rank ring
# all-reduce of 1 MiB moves (each rank sends, reduces and receives half);
# and the trace needs a single size.
set -euo pipefail
sim=$(readlink -f "$1")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$sim" --nranks 2 --coll allreduce --bytes 1M:1M:x2 --algo ring --trace "$dir/sim-%r.json" > "$dir/out"
python3 - "$dir/sim-0.json" "$dir/sim-1.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    events = [e for e in json.load(open(path))["traceEvents"] if e["ph"] == "X"]
    calls = [e for e in events if e["tid"] == 0]
    steps = [e for e in events if e["tid"] >= 1]
    assert len(calls) == 1 and calls[0]["name"] == "AllReduce", calls
    call = calls[0]
    assert call["args"]["algorithm"] == "ring" and call["args"]["simulated"] is True, call
    moved = {}
    for s in steps:
        assert call["ts"] <= s["ts"] and s["ts"] + s["dur"] <= call["ts"] + call["dur"] + 0.002, s
        moved[s["name"]] = moved.get(s["name"], 0) + s["args"]["bytes"]
    want = {"send": 524288, "recvReduceCopySend": 524288, "recv": 524288}
    assert moved == want, f"{path}: steps moved {moved}, expected {want}"
    print(f"{path}: 1 call, {len(steps)} steps")
PY
if "$sim" --nranks 2 --bytes 1M:2M:x2 --trace "$dir/x.json" > "$dir/err" 2>&1; then
  echo "FAIL: --trace over several sizes was accepted"; exit 1
fi
grep -q "needs one size" "$dir/err" || { cat "$dir/err"; echo "FAIL: no reason given"; exit 1; }
echo "PASS: simulated traces of both ranks in the executor's format"
