#!/usr/bin/env bash
# weft-info --calibrate writes a tune file that the tuner reads back: the
# table names the file and shows its measured constants; a damaged file is
# refused by weft-info and by a communicator, with the line named.
set -euo pipefail
weft_info=$1; perf=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$weft_info" --calibrate --out "$dir/tune" 2>"$dir/err"
grep -q "wrote $dir/tune" "$dir/err" || { echo "FAIL: no 'wrote' line"; cat "$dir/err"; exit 1; }
for name in call_us hop_us switch_us step_us copy_gbps reduce_gbps node_copy_gbps net_us net_gbps wan_us wan_gbps; do
  grep -qE "^$name +=  *[0-9.e+-]+ " "$dir/tune" || { echo "FAIL: $name missing"; cat "$dir/tune"; exit 1; }
done
copy=$(awk '$1=="copy_gbps"{print $3}' "$dir/tune")
table=$(WEFT_TUNE_FILE="$dir/tune" "$weft_info" --tune --nranks 4 --collective allreduce)
echo "$table" | grep -q "constants ($dir/tune)" || { echo "FAIL: the table does not name the file"; exit 1; }
echo "$table" | grep -qE "copy_gbps += $copy " || { echo "FAIL: the table does not show copy_gbps = $copy"; exit 1; }
echo "hop_us = 2
copy_gbps = quick" > "$dir/bad"
set +e
out=$(WEFT_TUNE_FILE="$dir/bad" "$weft_info" --tune --nranks 4 2>&1); status=$?
set -e
[ $status -eq 2 ] || { echo "FAIL: weft-info took a bad file (status $status)"; exit 1; }
echo "$out" | grep -q "WEFT_TUNE_FILE=$dir/bad: line 2: copy_gbps = 'quick' is not a positive number" ||
  { echo "FAIL: $out"; exit 1; }
set +e
out=$(WEFT_TUNE_FILE="$dir/bad" "$perf" -t 2 -b 8 -e 8 -n 1 -w 0 2>&1); status=$?
set -e
[ $status -ne 0 ] || { echo "FAIL: a communicator took a bad file"; exit 1; }
echo "$out" | grep -q "line 2: copy_gbps" || { echo "FAIL: $out"; exit 1; }
echo "PASS: calibrated file read back ($copy GB/s copy), bad file refused"
