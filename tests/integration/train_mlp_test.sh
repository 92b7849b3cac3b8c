#!/usr/bin/env bash
# The training example on N ranks: with bucket views, with copy-in, and with
# one all-reduce after backward (--no-overlap), the same steps end in the same
# weights, bit for bit (the digest of every weight), identical on every rank;
# and the loss went down.
#   train_mlp_test.sh TRAIN_MLP NRANKS
set -uo pipefail
bin=$1 n=$2
# The same bits need the same order of summation for every element: the
# buckets and the one whole-gradient all-reduce differ in size, so the tuner
# may give them different algorithms, and the ring's order depends on which
# block an element falls in. Two-shot sums every element in rank order at
# any size (and 2 ranks' sums do not depend on the order at all).
export WEFT_ALGO=${WEFT_ALGO:-twoshot}
args=(--ranks "$n" --steps 6 --warmup 1 --batch 64 --input 32 --hidden 200 --layers 2 --output 8
      --first-bucket-kb 16 --bucket-cap-kb 64)
declare -A digest
for mode in views copy-in no-overlap; do
  extra=()
  [[ $mode == copy-in ]] && extra=(--copy-in)
  [[ $mode == no-overlap ]] && extra=(--no-overlap)
  out=$("$bin" "${args[@]}" "${extra[@]}" 2>&1)
  status=$?
  echo "$out"
  [[ $status -eq 0 ]] || { echo "FAIL: $mode: exit status $status"; exit 1; }
  line=$(grep -E "^# weights identical on all $n ranks: digest [0-9a-f]{16}$" <<<"$out") ||
    { echo "FAIL: $mode: no 'weights identical on all $n ranks' line"; exit 1; }
  digest[$mode]=${line##* }
  # Loss: the first step's against the last's.
  first=$(awk '$1 == "0" {print $2}' <<<"$out")
  last=$(awk '$1 == "5" {print $2}' <<<"$out")
  [[ -n $first && -n $last ]] || { echo "FAIL: $mode: no loss lines"; exit 1; }
  awk -v a="$first" -v b="$last" 'BEGIN {exit !(b < a)}' || { echo "FAIL: $mode: loss $first -> $last"; exit 1; }
  if [[ $mode != no-overlap ]]; then
    grep -qE "^# [0-9]+ buckets" <<<"$out" || { echo "FAIL: $mode: no bucket line"; exit 1; }
  fi
done
[[ ${digest[views]} == "${digest[no-overlap]}" && ${digest[copy-in]} == "${digest[no-overlap]}" ]] ||
  { echo "FAIL: digests differ: views ${digest[views]}, copy-in ${digest[copy-in]}, no-overlap ${digest[no-overlap]}"; exit 1; }
echo "PASS: $n ranks, views, copy-in and no-overlap all end in weights ${digest[views]}"
