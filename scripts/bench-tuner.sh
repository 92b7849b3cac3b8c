#!/usr/bin/env bash
# The tuner's choice against every algorithm forced, side by side in one run:
# a perf binary (all_reduce_perf by default) once with the tuner choosing and
# once per algorithm named (WEFT_ALGO), the runs interleaved over several
# rounds, the best out-of-place time of each kept. Prints per size the
# tuner's time and choice (weft-info --tune, with the same constants), the
# time of every algorithm forced, tuner / the best of them, and the chosen
# algorithm's forced time / the best (which leaves out the spread between
# runs of one plan).
#   scripts/bench-tuner.sh shm [RANKS]      RANKS processes under mpirun (default 4)
#   scripts/bench-tuner.sh netns [NODES]    NODES network namespaces, one rank each (default 8; root)
# Environment: ROUNDS (3), MAXBYTES (64M), ITERS (20), ALGOS (ring oneshot twoshot tree),
# COLLECTIVE (all_reduce; or broadcast, reduce: the perf binary COLLECTIVE_perf).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
mode=${1:-shm}
count=${2:-}
rounds=${ROUNDS:-3}
algos=(${ALGOS:-ring oneshot twoshot tree})
collective=${COLLECTIVE:-all_reduce}
perf=$build/perf/${collective}_perf
sweep=(-b 8 -e "${MAXBYTES:-64M}" -f 4 -n "${ITERS:-20}" -w 5 -c 1)
out=$(mktemp -d)
trap 'rm -rf "$out"; [[ $mode == netns ]] && "$here/netns.sh" down wtune$$ >/dev/null 2>&1 || true' EXIT
tune=()
case $mode in
  shm)
    ranks=${count:-4}
    nodes=1
    mpi=(--oversubscribe --bind-to none -x WEFT_SOCKET_IFNAME=lo -x WEFT_ALGO)
    [ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
    run() { mpirun "${mpi[@]}" -np "$ranks" "$perf" "${sweep[@]}"; }
    # Processes of one node: the tuner weighs reads by cross-memory attach.
    tune=(--processes)
    ;;
  netns)
    ranks=${count:-8}
    nodes=$ranks
    "$here/netns.sh" up wtune$$ "$nodes" >/dev/null
    run() { "$here/netns.sh" run wtune$$ "$nodes" 1 -- env WEFT_ALGO="${WEFT_ALGO:-}" "$perf" "${sweep[@]}" | sed -n '/^=== rank 1/q;p' || true; }
    ;;
  *) echo "usage: bench-tuner.sh shm [RANKS] | netns [NODES]" >&2; exit 2 ;;
esac
echo "### $(date -u +%FT%TZ) $(nproc) cores:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); $collective, $ranks ranks on $nodes node(s), $rounds rounds"
for round in $(seq "$rounds"); do
  for algo in auto "${algos[@]}"; do
    if [[ $algo == auto ]]; then export WEFT_ALGO=""; else export WEFT_ALGO=$algo; fi
    run 2>&1 | awk -v a="$algo" '$1 ~ /^[0-9]+$/ && NF >= 13 {print a, $1, $6, $9}' >>"$out/times"
  done
done
if grep -q -v " 0$" "$out/times"; then echo "bench-tuner: some run had wrong values" >&2; grep -v " 0$" "$out/times" >&2; exit 1; fi
WEFT_ALGO= "$build/src/weft-info" --tune --nranks "$ranks" --nodes "$nodes" "${tune[@]}" --collective "${collective//_/}" |
  awk '$1 ~ /^[0-9]+$/ {b=$1; u=$2; m=(u=="B"?1:u=="KiB"?1024:u=="MiB"?1048576:1073741824); split($3, c, "/"); print b*m, c[1]}' >"$out/choice"
{
  printf "%10s %10s %-14s" bytes "tuner us" "(chose)"
  for a in "${algos[@]}"; do printf " %10s" "$a us"; done
  printf " %8s %12s\n" "ratio" "chosen/best"
}
awk -v list="${algos[*]}" 'FNR == NR {choice[$1] = $2; next}
     {key = $1 " " $2; if (!(key in best) || $3 < best[key]) best[key] = $3; sizes[$2] = 1}
     END {
       n = split(list, algos, " ")
       for (s in sizes) {
         bt = 0
         line = sprintf("%10s %10.2f %-14s", s, best["auto " s], "(" choice[s] ")")
         for (i = 1; i <= n; ++i) {
           t = best[algos[i] " " s]
           line = line sprintf(" %10.2f", t)
           if (i == 1 || t < bt) bt = t
         }
         printf "%s %8.2f %12.2f\n", line, best["auto " s] / bt, best[choice[s] " " s] / bt
       }
     }' "$out/choice" "$out/times" | sort -n
