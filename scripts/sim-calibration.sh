#!/usr/bin/env bash
# weft-sim against weft's own runs on this host. Calibrates a cluster spec
# (weft-sim calibrate: weft-info --calibrate's constants), runs the
# all-reduce perf binary on 2 and 4 ranks for the ring, two-shot and tree
# plans, replays the same calls on the spec, and prints measured and
# predicted time per size side by side.
#
#   scripts/sim-calibration.sh [--quick] [--netns] [BUILD_DIR]
#
# --quick: three sizes and few iterations (what CTest runs: that both
# columns come out, not how close they are). --netns: also 2, 3 and 4 nodes
# of one rank in network namespaces (needs root; scripts/netns.sh), the
# network's constants measured first with sendrecv_perf between two of them.
# The figures belong in docs/performance.md, with the machine they came from.
set -euo pipefail

quick=0
netns=0
build=build
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --netns) netns=1 ;;
    -h | --help)
      sed -n '2,15p' "$0"
      exit 0
      ;;
    *) build=$arg ;;
  esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)
sim=$build/sim/weft-sim
perf=$build/perf
for tool in "$sim" "$perf/all_reduce_perf" "$build/src/weft-info"; do
  [[ -x $tool ]] || {
    echo "sim-calibration: $tool is not built" >&2
    exit 2
  }
done

if ((quick)); then
  range=(-b 8 -e 32K -f 64 -n 5 -w 2)
  simBytes=8:32K:x64
  algos=(ring)
else
  range=(-b 8 -e 256M -f 8 -n 30 -w 10)
  simBytes=8:256M:x8
  algos=(ring twoshot tree)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"; ((netns)) && "$here/scripts/netns.sh" down simcal >/dev/null 2>&1 || true' EXIT
netArgs=()

if ((netns)); then
  "$here/scripts/netns.sh" up simcal 4 >/dev/null
  # One hand-off over TCP (an 8-byte send and receive) and a stream's rate.
  "$here/scripts/netns.sh" run simcal 2 1 -- "$perf/sendrecv_perf" -b 8 -e 64M -f 8388608 -n 20 -w 5 >"$work/net" 2>&1
  read -r netUs netGBps < <(python3 - "$work/net" <<'PY'
import re, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) > 8 and f[0].isdigit() and re.match(r"^[0-9.]+$", f[5]):
        rows[int(f[0])] = (float(f[5]), float(f[6]))
print(rows[8][0], rows[max(rows)][1])
PY
  )
  echo "# network namespaces: an 8-byte send $netUs us, 64 MiB at $netGBps GB/s"
  netArgs=(--net-us "$netUs" --net-gbps "$netGBps")
fi

"$sim" calibrate --weft-info "$build/src/weft-info" --name "$(hostname)-calibrated" "${netArgs[@]}" \
  --out "$work/spec.json" 2>/dev/null
echo "# spec: $(tr -d '\n ' <"$work/spec.json")"

mpi=(mpirun --oversubscribe --allow-run-as-root --bind-to none -x WEFT_SOCKET_IFNAME=lo -x WEFT_ALGO)
runs=()
for ranks in 2 4; do
  for algo in "${algos[@]}"; do
    WEFT_ALGO=$algo "${mpi[@]}" -np "$ranks" "$perf/all_reduce_perf" "${range[@]}" >"$work/m-$ranks-1-$algo" 2>&1
    "$sim" --cluster "$work/spec.json" --nranks "$ranks" --algo "$algo" --bytes "$simBytes" >"$work/p-$ranks-1-$algo"
    runs+=("$ranks-1-$algo")
  done
done
if ((netns)); then
  for nodes in 2 3 4; do
    for algo in "${algos[@]}"; do
      WEFT_ALGO=$algo "$here/scripts/netns.sh" run simcal "$nodes" 1 -- "$perf/all_reduce_perf" "${range[@]}" \
        >"$work/m-$nodes-$nodes-$algo" 2>&1
      "$sim" --cluster "$work/spec.json" --nranks "$nodes" --nodes "$nodes" --algo "$algo" --bytes "$simBytes" \
        >"$work/p-$nodes-$nodes-$algo"
      runs+=("$nodes-$nodes-$algo")
    done
  done
fi

python3 - "$work" "${runs[@]}" <<'PY'
import re, sys
work, runs = sys.argv[1], sys.argv[2:]
units = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
print("%5s %5s %9s %10s %14s %14s %10s" % ("ranks", "nodes", "algorithm", "bytes", "measured us", "predicted us",
                                           "pred/meas"))
worst = 0.0
for run in runs:
    ranks, nodes, algo = run.split("-")
    measured = {}
    for line in open("%s/m-%s" % (work, run)):
        f = line.split()
        # rank 0's rows: size count type redop root time algbw busbw wrong ...
        if len(f) > 8 and f[0].isdigit() and re.match(r"^[0-9.]+$", f[5]) and int(f[0]) not in measured:
            measured[int(f[0])] = float(f[5])
    predicted = {}
    for line in open("%s/p-%s" % (work, run)):
        m = re.match(r"^\s+(\d+) (B|KiB|MiB|GiB)\s+\S+/\d+\s+([0-9.]+)", line)
        if m:
            predicted[int(m.group(1)) * units[m.group(2)]] = float(m.group(3))
    if not measured or not predicted:
        sys.exit("sim-calibration: no rows for %s (see %s/m-%s)" % (run, work, run))
    for size in sorted(measured):
        if size not in predicted:
            continue
        ratio = predicted[size] / measured[size] if measured[size] > 0 else 0
        worst = max(worst, abs(ratio - 1))
        print("%5s %5s %9s %10d %14.2f %14.2f %10.2f" % (ranks, nodes, algo, size, measured[size], predicted[size],
                                                        ratio))
print("# the worst size is %.0f%% off (the goal: within 20%%)" % (100 * worst))
PY
