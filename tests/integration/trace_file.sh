#!/usr/bin/env bash
# WEFT_TRACE_FILE: 2 thread ranks run ring all-reduces of 1 MiB (float32)
# with the path's %r, then without it (".<rank>" appended). Each rank's file
# is valid Chrome-trace JSON; every 1 MiB all-reduce is one call event that
# names the ring; its steps lie inside the call on the channel's lane, and
# their bytes add up to what a 2-rank ring moves (each rank sends, reduces and
# receives half of the buffer). Sends and receives are traced too (2 thread
# ranks, 1 MiB messages): one call event per message naming the peer, its
# send or recv steps inside it adding up to the message. Without the
# variable no file appears.
set -euo pipefail
perf=$(readlink -f "$1")
sendrecv=$(readlink -f "$2")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
check() {
  python3 - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    d = json.load(open(path))
    events = [e for e in d["traceEvents"] if e["ph"] == "X"]
    calls = [e for e in events if e["tid"] == 0 and e["name"] == "AllReduce" and e["args"]["count"] == 262144]
    steps = [e for e in events if e["tid"] >= 1]
    assert len(calls) >= 4, f"{path}: {len(calls)} 1 MiB all-reduce calls traced, expected at least 4"
    for call in calls:
        assert call["args"]["algorithm"] == "ring" and call["args"]["type"] == "float32", call
        inside = [s for s in steps if call["ts"] <= s["ts"] and s["ts"] + s["dur"] <= call["ts"] + call["dur"] + 0.002]
        moved = {}
        for s in inside:
            assert s["dur"] >= 0
            moved[s["name"]] = moved.get(s["name"], 0) + s["args"]["bytes"]
        want = {"send": 524288, "recvReduceCopySend": 524288, "recv": 524288}
        assert moved == want, f"{path}: a call's steps moved {moved}, expected {want}"
    print(f"{path}: {len(calls)} calls, {len(steps)} steps")
PY
}
check_p2p() {
  python3 - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    events = [e for e in json.load(open(path))["traceEvents"] if e["ph"] == "X"]
    messages = [e for e in events if e["tid"] == 0 and e["name"] in ("Send", "Recv") and e["args"]["count"] == 262144]
    steps = [e for e in events if e["tid"] >= 1]
    for kind in ("Send", "Recv"):
        assert len([m for m in messages if m["name"] == kind]) >= 3, f"{path}: too few {kind} events"
    for m in messages:
        step = m["name"].lower()
        side = "sendPeer" if step == "send" else "recvPeer"
        inside = [s for s in steps if s["name"] == step and s["args"][side] == m["args"]["peer"] and
                  m["ts"] <= s["ts"] and s["ts"] + s["dur"] <= m["ts"] + m["dur"] + 0.002]
        moved = sum(s["args"]["bytes"] for s in inside)
        assert moved >= 1048576, f"{path}: a {m['name']} of 1 MiB has {moved} bytes of {step} steps inside it"
    print(f"{path}: {len(messages)} messages")
PY
}
WEFT_TRACE_FILE="$dir/p2p-%r.json" "$sendrecv" -t 2 -b 1M -e 1M -n 2 -w 1 > "$dir/out3"
check_p2p "$dir/p2p-0.json" "$dir/p2p-1.json"
WEFT_ALGO=ring WEFT_TRACE_FILE="$dir/run-%r.json" "$perf" -t 2 -b 1M -e 1M -n 2 -w 1 > "$dir/out1"
check "$dir/run-0.json" "$dir/run-1.json"
WEFT_ALGO=ring WEFT_TRACE_FILE="$dir/plain.json" "$perf" -t 2 -b 1M -e 1M -n 2 -w 1 > "$dir/out2"
check "$dir/plain.json.0" "$dir/plain.json.1"
grep -q "Out of bounds values : 0 OK" "$dir/out1"
mkdir "$dir/off" && (cd "$dir/off" && "$perf" -t 2 -b 1M -e 1M -n 1 -w 0 > /dev/null)
[ -z "$(ls -A "$dir/off")" ] || { echo "FAIL: a file appeared without WEFT_TRACE_FILE"; exit 1; }
echo "PASS: traces of both ranks, calls, messages and their steps"
