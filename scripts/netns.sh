#!/usr/bin/env bash
# Several "nodes" on one machine: network namespaces NAME-0..NAME-<n-1>, each
# with an eth0 joined to a bridge that lives in its own namespace NAME-br, so
# the machine's own network is never touched. Node i has 10.231.0.(i+1)/24.
#
#   netns.sh up NAME NODES           create (removing any leftovers first)
#   netns.sh down NAME               remove everything NAME created
#   netns.sh shape NAME NODE RATE    token-bucket limit on NODE's egress (tc tbf, e.g. 200mbit)
#   netns.sh unshape NAME NODE
#   netns.sh wan NAME NODES SITES DELAY RATE
#       splits the NODES into SITES equal sites (in order) and gives the traffic
#       between sites a one-way DELAY (e.g. 5ms: 10 ms round trip) and a RATE on
#       every node, for the packets to other sites' addresses only: tc netem
#       where the kernel has it, else a delay line (tests/multinode/delay_line.cc,
#       found at $WEFT_DELAY_LINE or build/tests/weft_delay_line) that the far
#       sites' addresses are routed through; `unshape` on every node undoes it
#   netns.sh run NAME NODES RANKS_PER_NODE [--sites S] ... also sets WEFT_SITEID
#       (S equal sites of the nodes, in order)
#   netns.sh run NAME NODES RANKS_PER_NODE [--expect-killed RANK] -- COMMAND [ARGS...]
#       starts NODES x RANKS_PER_NODE ranks (rank r on node r / RANKS_PER_NODE)
#       with WEFT_RANK, WEFT_NRANKS, WEFT_COMM_ID (node 0), WEFT_HOSTID and
#       WEFT_SOCKET_IFNAME=eth0 set; prints every rank's output; fails when a
#       rank fails (a rank named by --expect-killed must die by a signal).
#
# Needs root (CAP_NET_ADMIN) and iproute2. Exit status 77 when namespaces
# cannot be created here (CTest reports a skip).
set -euo pipefail

subnet=10.231.0

need_root() {
  if [[ $(id -u) -ne 0 ]] || ! command -v ip > /dev/null; then
    echo "netns.sh: needs root and iproute2 (ip); skipping" >&2
    exit 77
  fi
}

down() {
  local name=$1
  for ns in $(ip netns list 2> /dev/null | awk '{print $1}'); do
    if [[ $ns == "$name-"* ]]; then
      # What still runs inside (a delay line, a rank left behind) would keep
      # the namespace alive after its name is gone.
      for pid in $(ip netns pids "$ns" 2> /dev/null); do kill "$pid" 2> /dev/null || true; done
      ip netns del "$ns" 2> /dev/null || true
    fi
  done
  rm -f "${TMPDIR:-/tmp}/weft-netns-$name-"*.delay.{pid,log}
}

up() {
  local name=$1 nodes=$2
  need_root
  down "$name"
  if ! ip netns add "$name-br" 2> /dev/null; then
    echo "netns.sh: cannot create network namespaces here; skipping" >&2
    exit 77
  fi
  ip -n "$name-br" link add br0 type bridge
  ip -n "$name-br" link set br0 up
  for ((i = 0; i < nodes; ++i)); do
    ip netns add "$name-$i"
    ip link add "wv$i" netns "$name-br" type veth peer name eth0 netns "$name-$i"
    ip -n "$name-br" link set "wv$i" master br0 up
    ip -n "$name-$i" addr add "$subnet.$((i + 1))/24" dev eth0
    ip -n "$name-$i" link set eth0 up
    ip -n "$name-$i" link set lo up
  done
  # Wait until every node reaches node 0 (the bridge needs a moment).
  for ((i = 1; i < nodes; ++i)); do
    for _ in $(seq 50); do
      if ip netns exec "$name-$i" ping -c 1 -W 1 "$subnet.1" > /dev/null 2>&1; then break; fi
      sleep 0.1
    done
  done
}

shape() {
  local name=$1 node=$2 rate=$3
  ip netns exec "$name-$node" tc qdisc replace dev eth0 root tbf rate "$rate" burst 256kb latency 200ms
}

unshape() {
  local ns="$1-$2" pidfile
  pidfile=$(delay_pidfile "$1" "$2")
  if [[ -f $pidfile ]]; then
    local pid log="${pidfile%.pid}.log"
    pid=$(cat "$pidfile")
    kill "$pid" 2> /dev/null || true  # its device and routes go with it
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.02; done
    tail -n 1 "$log" | sed "s/^/netns.sh: node $2's delay line: /"
    rm -f "$pidfile" "$log"
    ip -n "$1-br" link set "wv$2" mtu 1500 2> /dev/null || true
    ip -n "$ns" link set eth0 mtu 1500 2> /dev/null || true
    ip netns exec "$ns" ip rule del fwmark "$delay_mark" lookup "$delay_table" 2> /dev/null || true
    ip netns exec "$ns" ip route flush table "$delay_table" 2> /dev/null || true
  fi
  ip netns exec "$ns" tc qdisc del dev eth0 root 2> /dev/null || true
}

delay_mark=0x77
delay_table=177
delay_pidfile() { echo "${TMPDIR:-/tmp}/weft-netns-$1-$2.delay.pid"; }

# DELAY as microseconds: 5ms, 250us, 1s.
delay_us() {
  case $1 in
    *us) echo "${1%us}" ;;
    *ms) echo $((${1%ms} * 1000)) ;;
    *s) echo $((${1%s} * 1000000)) ;;
    *) echo "netns.sh wan: delay $1: give it as Nms, Nus or Ns" >&2; exit 2 ;;
  esac
}

# Node I's traffic to the other sites through a delay line: a TUN device wan0
# that those addresses are routed to, shaped to RATE; the delay line sends
# each packet on after DELAY with a mark whose routing table reaches eth0.
delay_line_path() { echo "${WEFT_DELAY_LINE:-$(dirname "$0")/../build/tests/weft_delay_line}"; }

delay_line() {
  local name=$1 nodes=$2 per=$3 i=$4 delay=$5 rate=$6
  local ns="$name-$i" line pidfile log us
  line=$(delay_line_path)
  us=$(delay_us "$delay")
  pidfile=$(delay_pidfile "$name" "$i")
  log="${pidfile%.pid}.log"
  for f in all default eth0; do ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$f.rp_filter=0"; done
  # Jumbo frames on the path: a sixth of the packets to carry one by one.
  ip -n "$name-br" link set "wv$i" mtu 9000
  ip -n "$ns" link set eth0 mtu 9000
  ip netns exec "$ns" setsid "$line" wan0 "$us" "$delay_mark" 9000 > "$log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 100); do
    if grep -q "^ready" "$log"; then break; fi
    sleep 0.05
  done
  grep -q "^ready" "$log" || { echo "netns.sh wan: the delay line did not start:" >&2; cat "$log" >&2; exit 1; }
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.wan0.disable_ipv6=1 2> /dev/null || true
  # Room for what arrives while the delay line waits for a core.
  ip -n "$ns" link set wan0 txqueuelen 10000
  ip netns exec "$ns" ip rule add fwmark "$delay_mark" lookup "$delay_table" priority 100
  ip netns exec "$ns" ip route add "$subnet.0/24" dev eth0 table "$delay_table"
  # A router's queue of one round trip at the rate: TCP fills whatever queue
  # it is given, and everything else that crosses waits behind it.
  ip netns exec "$ns" tc qdisc replace dev wan0 root tbf rate "$rate" burst 256kb latency "$((2 * us))us"
  for ((j = 0; j < nodes; ++j)); do
    if ((j / per != i / per)); then
      ip netns exec "$ns" ip route add "$subnet.$((j + 1))/32" dev wan0 src "$subnet.$((i + 1))"
    fi
  done
}

wan() {
  local name=$1 nodes=$2 sites=$3 delay=$4 rate=$5
  local per=$((nodes / sites)) warned=0
  for ((i = 0; i < nodes; ++i)); do
    local ns="$name-$i"
    unshape "$name" "$i"
    # htb: what goes to another site's addresses through a class of RATE,
    # the rest unlimited; the delay with netem where the kernel has it, else
    # through a delay line.
    ip netns exec "$ns" tc qdisc add dev eth0 root handle 1: htb default 10 r2q 100000
    ip netns exec "$ns" tc class add dev eth0 parent 1: classid 1:10 htb rate 100gbit
    ip netns exec "$ns" tc class add dev eth0 parent 1: classid 1:30 htb rate "$rate"
    if ! ip netns exec "$ns" tc qdisc add dev eth0 parent 1:30 handle 30: netem delay "$delay" limit 100000 \
      2> /dev/null; then
      if [[ -x $(delay_line_path) ]]; then
        ip netns exec "$ns" tc qdisc del dev eth0 root  # the delay line's TUN device takes the rate
        delay_line "$name" "$nodes" "$per" "$i" "$delay" "$rate"
        if ((!warned)); then echo "netns.sh wan: this kernel has no netem: $delay and $rate between sites by a delay line" >&2; fi
        warned=1
        continue
      fi
      echo "netns.sh wan: no netem and no delay line (build weft_delay_line): $rate between sites, no delay" >&2
    fi
    for ((j = 0; j < nodes; ++j)); do
      if ((j / per != i / per)); then
        ip netns exec "$ns" tc filter add dev eth0 parent 1: protocol ip prio 1 u32 \
          match ip dst "$subnet.$((j + 1))/32" flowid 1:30
      fi
    done
  done
}

run() {
  local name=$1 nodes=$2 per=$3
  shift 3
  local killed=-1 sites=0
  while [[ $# -gt 0 && $1 != "--" ]]; do
    case $1 in
      --expect-killed) killed=$2; shift 2 ;;
      --sites) sites=$2; shift 2 ;;
      *) echo "netns.sh run: unknown option $1" >&2; exit 2 ;;
    esac
  done
  shift  # --
  local nranks=$((nodes * per)) port=$((21000 + RANDOM % 20000))
  local logs
  logs=$(mktemp -d)
  local pids=()
  for ((r = 0; r < nranks; ++r)); do
    local node=$((r / per)) site=()
    if ((sites > 0)); then site=(WEFT_SITEID="site-$((node / (nodes / sites)))"); fi
    ip netns exec "$name-$node" env "${site[@]}" WEFT_RANK=$r WEFT_NRANKS=$nranks WEFT_COMM_ID=$subnet.1:$port \
      WEFT_HOSTID="$name-$node" WEFT_SOCKET_IFNAME=eth0 "$@" > "$logs/$r.log" 2>&1 &
    pids+=($!)
  done
  local status=0
  for ((r = 0; r < nranks; ++r)); do
    local rc=0
    wait "${pids[$r]}" || rc=$?
    if [[ $r -eq $killed ]]; then
      if [[ $rc -lt 128 ]]; then
        echo "netns.sh: rank $r was expected to be killed but exited with $rc" >&2
        status=1
      fi
    elif [[ $rc -ne 0 ]]; then
      echo "netns.sh: rank $r (node $((r / per))) exited with $rc" >&2
      status=1
    fi
  done
  for ((r = 0; r < nranks; ++r)); do
    echo "=== rank $r (node $((r / per)))"
    cat "$logs/$r.log"
  done
  rm -rf "$logs"
  return $status
}

command=${1:-}
shift || true
case $command in
  up) up "$@" ;;
  down) down "$@" ;;
  shape) shape "$@" ;;
  unshape) unshape "$@" ;;
  wan) need_root; wan "$@" ;;
  run) run "$@" ;;
  *) sed -n '2,20p' "$0"; exit 2 ;;
esac
