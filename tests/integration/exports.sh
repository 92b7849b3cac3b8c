#!/usr/bin/env bash
# libweft.so exports the C API of its public C headers and nothing else:
# every function they declare is there, and every symbol there is declared.
#   exports.sh LIBWEFT_SO HEADER...
set -euo pipefail
lib=$1
shift
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /[TtWwDdBbRrVv]/ {print $3}' | sort -u)
declared=$(grep -ohE '\bweft[A-Z][A-Za-z0-9]*\(' "$@" | tr -d '(' | sort -u)
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
[[ -z $extra ]] || { echo "FAIL: exported but not in the headers:"; echo "$extra" | head -20; exit 1; }
[[ -z $missing ]] || { echo "FAIL: declared but not exported:"; echo "$missing"; exit 1; }
echo "libweft.so exports exactly the $(echo "$declared" | wc -l) functions of $*"
