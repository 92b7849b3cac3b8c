#!/usr/bin/env bash
# Runs a command and passes only when it exits with the expected status AND
# every pattern (an extended regex) matches a line of what it printed
# (stdout and stderr together). CTest's PASS_REGULAR_EXPRESSION alone would
# ignore the exit status and pass on any one matching line.
#   expect_output.sh [--status N] PATTERN... -- COMMAND [ARGS...]
set -uo pipefail
want=0
if [[ ${1:-} == --status ]]; then want=$2; shift 2; fi
patterns=()
while [[ $# -gt 0 && $1 != -- ]]; do patterns+=("$1"); shift; done
[[ ${1:-} == -- ]] || { echo "usage: expect_output.sh [--status N] PATTERN... -- COMMAND..." >&2; exit 2; }
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" >"$out" 2>&1
status=$?
cat "$out"
# 77 is CTest's "skipped" (SKIP_RETURN_CODE): passed on as it is.
[[ $status -eq 77 && $want -ne 77 ]] && exit 77
[[ $status -eq $want ]] || { echo "FAIL: exit status $status, expected $want"; exit 1; }
for pattern in "${patterns[@]}"; do
  grep -qE -- "$pattern" "$out" || { echo "FAIL: no line matches: $pattern"; exit 1; }
done
echo "PASS: status $status and ${#patterns[@]} pattern(s) matched"
