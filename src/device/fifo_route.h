// Where the FIFOs between two ranks of a GPU communicator live: in the
// receiver's device memory, which the sender writes by peer-to-peer access
// (NVLink, NVSwitch or PCIe, as the topology's path class says), or in host
// memory both processes map and both devices reach (pinned and mapped), when
// peer access is impossible, would cross CPU sockets, or WEFT_P2P_DISABLE=1
// asks for it. Both ranks of a pair must agree: each rank decides for every
// peer, the decisions are exchanged, and a pair stages through host memory
// when either rank says so (fifoRoutesAgreed).
#pragma once

#include <string>
#include <vector>

#include "topology/machine.h"

namespace weft {

struct FifoRouteQuery {
  bool p2pDisabled = false;  // WEFT_P2P_DISABLE=1
  // Whether this rank's device can write the peer's device memory: the same
  // process on the emulated device; CUDA peer access (or the same GPU).
  bool reachable = true;
  bool emulated = false;
  std::string busId, peerBusId;           // PCI bus ids as CUDA writes them
  const MachineTopology* topo = nullptr;  // null: path unknown
};

struct FifoRoute {
  bool throughHost = false;
  std::string why;  // for the INIT log: "NVSwitch", "across CPU sockets", ...
};

FifoRoute chooseFifoRoute(const FifoRouteQuery& query);

// Every pair's route from every rank's own decisions (wantsHost[r][p]: rank
// r would stage to and from p): host memory where either side wants it.
std::vector<std::vector<bool>> fifoRoutesAgreed(const std::vector<std::vector<bool>>& wantsHost);

}  // namespace weft
