#!/usr/bin/env bash
# Builds weft with a sanitizer (CMake presets asan or tsan in
# CMakePresets.json, host only) and runs the suites named below under it.
# Any report fails the run: UBSan is built not to recover, ASan and TSan
# exit non-zero on a finding, LeakSanitizer at exit.
#   scripts/sanitize.sh asan|tsan      (after scripts/setup.sh installed the packages)
#
# hwloc loads its plugins (pci, opencl, gl, xml) with dlopen and closes them
# again; LeakSanitizer then sees their static state as leaked from an
# "unknown module". Preloading the plugins keeps them mapped, so only real
# leaks are reported.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:?usage: scripts/sanitize.sh asan|tsan}
case $preset in
  asan)
    # Everything but the heaviest collective matrix, which runs in three of its shapes.
    suites=(plan_verifier_test exact_data_test reduce_test bootstrap_test net_test errors_test p2p_test premul_test comm_split_test
            config_test cpp_api_test bucket_layout_test bucketer_test collectives_test device_test single_copy_test
            sim_test)
    filter='*3ranks_threads*:*4ranks_processes*:*nodes1*'
    export ASAN_OPTIONS=detect_leaks=1:verify_asan_link_order=0:abort_on_error=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
  tsan)
    # The thread-rank suites: ranks, workers and proxies as threads of one
    # process. The collective matrix runs in two 3-thread shapes, ring and
    # one-shot, each in its own run with its own time limit (3 to 11 minutes
    # each under TSan on 2 cores, depending on the machine; the ring and
    # two-shot forced shapes and the 4- and 5-thread ones would add as much
    # again each). Each run gets 4 times the launcher's limit.
    suites=(p2p_test premul_test comm_split_test bucketer_test collectives_test@3ranks_threads
            collectives_test@3ranks_threads_oneshot_ch2_slot4096 errors_test device_test)
    export WEFT_TEST_TIMEOUT_SCALE=4
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    ;;
  *) echo "unknown preset $preset (asan or tsan)" >&2; exit 2 ;;
esac
plugins=$(ls /usr/lib/x86_64-linux-gnu/hwloc/hwloc_*.so 2>/dev/null | tr '\n' ':' || true)
cmake --preset "$preset" >/dev/null
targets=()
for suite in "${suites[@]}"; do targets+=("${suite%@*}"); done
cmake --build "build-$preset" -j "$(nproc)" --target $(printf '%s\n' "${targets[@]}" | sort -u)
export WEFT_TIMEOUT=60 WEFT_SOCKET_IFNAME=lo WEFT_TEST_VERIFIER_RANKS=12
status=0
for entry in "${suites[@]}"; do
  # suite@shape runs one shape of a parameterised suite in a run of its own.
  suite=${entry%@*} log=${entry//@/.}
  args=()
  [[ $suite == collectives_test && $preset == asan ]] && args=(--gtest_filter="$filter")
  [[ $entry == *@* ]] && args=(--gtest_filter="*/${entry#*@}")
  # The verifier's sweeps are arithmetic over the same code at every size:
  # under ASan's allocator the 1..64-rank sweep and the 1024-rank rings would
  # take most of the suite's time, so it sweeps 1..12 ranks and skips those.
  [[ $suite == plan_verifier_test ]] && args=(--gtest_filter='-*UpTo1024Ranks*')
  [[ ($suite == p2p_test || $suite == premul_test) && $preset == tsan ]] && args=(--gtest_filter='*threads*')
  [[ $suite == comm_split_test && $preset == tsan ]] && args=()
  [[ $suite == bucketer_test && $preset == tsan ]] && args=(--gtest_filter='-*AdoptsTheOrder*')  # that one forks
  [[ $suite == errors_test && $preset == tsan ]] && args=(--gtest_filter='*ByAddress*:*SilentPeer*')
  # The emulated device: its blocks and streams are threads. Both sanitizers
  # run the element kernels and the group, buffer, failure and PreMulSum
  # tests (LL and simple, by address); ASan the 3-rank collective matrix too
  # (under TSan each matrix shape takes 6 minutes of spinning blocks).
  [[ $suite == device_test ]] && args=(--gtest_filter='DeviceElements.*:EmulatedDevice.*')
  [[ $suite == device_test && $preset == asan ]] && args=(--gtest_filter='DeviceElements.*:EmulatedDevice.*:*/3ranks')
  echo "== $preset: $suite ${args[*]}"
  if ! LD_PRELOAD=$plugins timeout 1200 "build-$preset/tests/$suite" "${args[@]}" >"build-$preset/$log.log" 2>&1; then
    status=1
    grep -E -A30 "ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error|FAILED" \
      "build-$preset/$log.log" | head -60
  fi
  tail -1 "build-$preset/$log.log"
done
if [[ $status -eq 0 ]]; then echo "$preset: every suite passed with no sanitizer report"; fi
exit $status
