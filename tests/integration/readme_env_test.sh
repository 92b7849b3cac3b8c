#!/usr/bin/env bash
# The README's environment table is the one weft-info prints from the code.
set -euo pipefail
weft_info=$1; readme=$2
expected=$("$weft_info" --markdown)
if ! grep -qF -- "$expected" "$readme"; then
  echo "README.md's environment table differs from 'weft-info --markdown'; paste its output into the README" >&2
  diff <(echo "$expected") <(sed -n '/^| variable | default | meaning |/,/^$/p' "$readme" | sed '/^$/d') >&2 || true
  exit 1
fi
echo "README environment table matches the code"
