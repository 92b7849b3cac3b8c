#!/usr/bin/env bash
# Set up, build, and run the whole test suite (every test has a timeout):
# first the layout and bug checks (scripts/lint.sh), then the sanitizer
# builds (scripts/sanitize.sh: ASan+UBSan of the core suites, TSan of the
# thread-rank suites) and a short run of every fuzz harness (scripts/fuzz.sh,
# WEFT_FUZZ_SECONDS each, 30 by default); WEFT_SKIP_SANITIZERS=1 skips those. Then the whole suite under CTest,
# the fault-injection trials (label faults) included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/lint.sh build
if [[ ${WEFT_SKIP_SANITIZERS:-0} != 1 ]]; then
  bash scripts/sanitize.sh asan
  bash scripts/sanitize.sh tsan
  bash scripts/fuzz.sh "${WEFT_FUZZ_SECONDS:-30}"
fi
cd build
ctest --output-on-failure --timeout 900 "$@"
