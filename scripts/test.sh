#!/usr/bin/env bash
# Set up, build, and run the whole test suite (every test has a timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
ctest --output-on-failure --timeout 900 "$@"
