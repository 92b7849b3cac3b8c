#!/usr/bin/env bash
# A rank killed (or stopped) at each phase of init: the others fail with an
# error within WEFT_TIMEOUT plus a margin instead of hanging, and /dev/shm is
# clean afterwards whoever died, the rank that created the node's segment
# included. The fault points are weft's own (WEFT_FAULT_INJECT).
#   init_kill_phases.sh PERF_BINARY
set -uo pipefail
perf=$1
source "$(dirname "$0")/private_devshm.sh"
private_devshm 256m "$0" "$@"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export WEFT_TIMEOUT=5 WEFT_SOCKET_IFNAME=lo
nranks=4
fail() { for f in "$tmp"/rank*.log; do echo "== $f"; cat "$f"; done; echo "FAIL: $*"; exit 1; }

source "$(dirname "$0")/rank_launch.sh"
# Runs 4 ranks with FAULT; codes[r] is each exit status, seconds the wall time.
launch() {
  local fault=$1 start=$SECONDS stopped=-1
  [[ $fault == *:stop ]] && stopped=$victim
  WEFT_FAULT_INJECT=$fault start_ranks $nranks "$tmp" "$perf" -b 1M -e 1M -n 1 -w 1
  wait_ranks $stopped
  seconds=$((SECONDS - start))
  if [[ $stopped -ge 0 ]]; then
    kill -KILL "${rank_pids[$stopped]}" 2>/dev/null
    wait "${rank_pids[$stopped]}" 2>/dev/null
    rank_codes[$stopped]=137
  fi
  codes=("${rank_codes[@]}")
}

trials=0
for point in init.bootstrap init.hosts shm.named shm.created shm.mapped init.shm init.done; do
  for victim in 0 2; do
    for how in "" ":stop"; do
      # Stopping is slow to detect (the timeout): once, at the leader's segment.
      [[ -n $how && ! ($point == shm.created && $victim -eq 0) ]] && continue
      launch "$point@$victim$how"
      trials=$((trials + 1))
      [[ ${codes[$victim]} -eq 137 ]] || fail "$point@$victim$how: the victim was not killed (status ${codes[$victim]})"
      for ((r = 0; r < nranks; ++r)); do
        [[ $r -eq $victim ]] && continue
        code=${codes[$r]}
        [[ $code -ne 0 && $code -lt 128 ]] || fail "$point@$victim$how: rank $r ended with status $code"
        grep -q "failed" "$tmp/rank$r.log" || fail "$point@$victim$how: rank $r printed no error"
      done
      [[ $seconds -le $((WEFT_TIMEOUT + 5)) ]] || fail "$point@$victim$how: took $seconds s"
      left=$(ls /dev/shm)
      [[ -z $left ]] || fail "$point@$victim$how: left in /dev/shm: $left"
    done
  done
done
echo "init faults: $trials trials, every survivor failed within WEFT_TIMEOUT + 5 s, /dev/shm clean after each"
