#!/usr/bin/env bash
# Runs the fault-injection suite (fault_suite.py) with /dev/shm to itself, so
# that whatever a trial leaves there is seen, and nothing beside it is.
#   tests/faults/fault_suite.sh RANK_BINARY [fault_suite.py options]
#   tests/faults/fault_suite.sh build/tests/fault_rank --trials 200          (soak)
#   scripts/netns.sh up wf 4 && tests/faults/fault_suite.sh build/tests/fault_rank \
#       --modes shm,nodes,netns --netns wf --trials 200                      (with namespaces)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../integration/private_devshm.sh"
private_devshm 1g "$0" "$@"
binary=$1
shift
exec python3 "$here/fault_suite.py" --rank-binary "$binary" "$@"
