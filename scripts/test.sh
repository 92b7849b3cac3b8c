#!/usr/bin/env bash
# Set up, build, and run the whole test suite (every test has a timeout):
# first the ASan+UBSan build of the core suites (scripts/sanitize.sh asan;
# WEFT_SKIP_SANITIZERS=1 skips it), then the whole suite under CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [[ ${WEFT_SKIP_SANITIZERS:-0} != 1 ]]; then bash scripts/sanitize.sh asan; fi
cd build
ctest --output-on-failure --timeout 900 "$@"
