#!/usr/bin/env bash
# Builds the libFuzzer harnesses (CMake preset fuzz: clang, ASan+UBSan) and
# runs each for SECONDS from its committed seed corpus (tests/fuzz/corpus/).
# A crash, a leak, a sanitizer report or a timeout fails the run and leaves
# the input in build-fuzz/findings/; add it to the harness's corpus and a
# regression test once fixed.
#   scripts/fuzz.sh [SECONDS] [HARNESS...]      (default 30 s each, every harness)
# Prints, per harness, executions, executions per second and coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
harnesses=("$@")
[[ ${#harnesses[@]} -gt 0 ]] || harnesses=(hello bootstrap_frames net_handshake topology_xml env)
cmake --preset fuzz >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${harnesses[@]/#/fuzz_}"
mkdir -p build-fuzz/findings
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for h in "${harnesses[@]}"; do
  work=$(mktemp -d)
  log=build-fuzz/fuzz_$h.log
  # New inputs go to a scratch folder; the committed corpus is only read.
  if build-fuzz/tests/fuzz/fuzz_$h -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
       -print_final_stats=1 -artifact_prefix="build-fuzz/findings/$h-" "$work" "tests/fuzz/corpus/$h" >"$log" 2>&1; then
    runs=$(grep -aoP 'stat::number_of_executed_units:\s*\K\d+' "$log" || echo "?")
    rate=$(grep -aoP 'stat::average_exec_per_sec:\s*\K\d+' "$log" || echo "?")
    cov=$(grep -aoP '#\d+\s+\w+\s+cov: \K\d+' "$log" | tail -1 || echo "?")
    features=$(grep -aoP '#\d+\s+\w+\s+cov: \d+ ft: \K\d+' "$log" | tail -1 || echo "?")
    echo "fuzz_$h: ${seconds} s, $runs runs, $rate exec/s, coverage $cov edges, $features features, no finding"
  else
    status=1
    echo "fuzz_$h: FINDING (see $log and build-fuzz/findings/)"
    grep -aE -A20 "ERROR: |runtime error|==[0-9]+==" "$log" | head -40
  fi
  rm -rf "$work"
done
exit $status
