# Sourced by scripts that start ranks as plain processes on loopback:
#   start_ranks N LOGDIR COMMAND [ARGS...]   starts ranks 0..N-1 in the background
#     (WEFT_RANK, WEFT_NRANKS, a fresh WEFT_COMM_ID), rank r's output in LOGDIR/rank$r.log;
#     their pids in rank_pids[r]
#   wait_ranks [SKIP]   waits for them; rank_codes[r] is each exit status (128+signal when
#     killed); rank SKIP (a stopped one, say) is not waited for
start_ranks() {
  local n=$1 logs=$2 r port=$((10000 + RANDOM % 20000))  # below the ephemeral range
  shift 2
  rank_pids=()
  for ((r = 0; r < n; ++r)); do
    WEFT_SOCKET_IFNAME=lo WEFT_RANK=$r WEFT_NRANKS=$n WEFT_COMM_ID=127.0.0.1:$port "$@" >"$logs/rank$r.log" 2>&1 &
    rank_pids+=($!)
  done
}

wait_ranks() {
  local skip=${1:--1} r
  rank_codes=()
  for ((r = 0; r < ${#rank_pids[@]}; ++r)); do
    [[ $r -eq $skip ]] && continue
    { wait "${rank_pids[$r]}"; } 2>/dev/null
    rank_codes[$r]=$?
  done
}
