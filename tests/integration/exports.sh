#!/usr/bin/env bash
# libweft.so exports the C API of include/weft/weft.h and nothing else: every
# function the header declares is there, and every symbol there is declared.
#   exports.sh LIBWEFT_SO WEFT_H
set -euo pipefail
lib=$1 header=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /[TtWwDdBbRrVv]/ {print $3}' | sort -u)
declared=$(grep -oE '\bweft[A-Z][A-Za-z0-9]*\(' "$header" | tr -d '(' | sort -u)
extra=$(comm -23 <(echo "$exported") <(echo "$declared"))
missing=$(comm -13 <(echo "$exported") <(echo "$declared"))
[[ -z $extra ]] || { echo "FAIL: exported but not in weft.h:"; echo "$extra" | head -20; exit 1; }
[[ -z $missing ]] || { echo "FAIL: declared in weft.h but not exported:"; echo "$missing"; exit 1; }
echo "libweft.so exports exactly the $(echo "$declared" | wc -l) functions of weft.h"
