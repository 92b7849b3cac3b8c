#!/usr/bin/env bash
# The README's environment table is, line for line, the one weft-info prints
# from the code.
set -euo pipefail
weft_info=$1; readme=$2
expected=$("$weft_info" --markdown)
actual=$(sed -n '/^| variable | default | meaning |/,/^$/p' "$readme" | sed '/^$/d')
if [ "$expected" != "$actual" ]; then
  echo "README.md's environment table differs from 'weft-info --markdown'; paste its output into the README" >&2
  diff <(echo "$expected") <(echo "$actual") >&2 || true
  exit 1
fi
echo "README environment table matches the code"
