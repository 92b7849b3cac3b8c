#!/usr/bin/env bash
# Communicators read the machine from WEFT_TOPO_FILE: a good file drives the
# ring and its channels (logged under GRAPH) and is dumped on request; a
# missing or malformed one gives a warning naming the cause, and the
# collectives still run and verify.
set -euo pipefail
perf=$1; weft_topo=$2; data=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { "$perf" -t 3 -b 8 -e 1M -f 32 -n 2 -w 1 >"$tmp/out" 2>&1 || { cat "$tmp/out"; echo "FAIL: exit status $?"; exit 1; }; }
expect() { grep -qE -- "$1" "$tmp/out" || { cat "$tmp/out"; echo "FAIL: no line matching: $1"; exit 1; }; }

WEFT_TOPO_FILE=$data/96em64t-4n4d3ca2co-pci.xml WEFT_DEBUG=INFO WEFT_DEBUG_SUBSYS=GRAPH WEFT_NCHANNELS=2 \
  WEFT_TOPO_DUMP_FILE=$tmp/dump.xml run
expect "this node: 1 device\(s\) from .*96em64t-4n4d3ca2co-pci.xml"
expect "channel 0: ring"
expect "channel 1: ring backwards"
expect "Out of bounds values : 0 OK"
"$weft_topo" --topo "$tmp/dump.xml" | grep -q "4 NUMA node(s)" || { echo "FAIL: the dumped topology does not load"; exit 1; }

WEFT_TOPO_FILE=$tmp/missing.xml run
expect "WARN .*cannot read topology file $tmp/missing.xml.*falls back to grouping this node's ranks by NUMA node"
expect "Out of bounds values : 0 OK"

head -c 3000 "$data/nvidiaDGX2.xml" >"$tmp/truncated.xml"
WEFT_TOPO_FILE=$tmp/truncated.xml run
expect "WARN .*truncated.xml.*falls back"
expect "Out of bounds values : 0 OK"
echo "topology file: used when good, a warning and the NUMA fallback when not"
