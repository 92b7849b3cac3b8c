// weft-sim's core: every rank's plan for one call, replayed on a modelled
// machine. The simulator consumes the plans the algorithms build (the same
// registry, the same builders) and cuts them into slices with the
// executors' own geometry (exec/geometry.h), so it never re-implements an
// algorithm: what it times is what would run.
//
// The model (first slice of it): ranks in nodes; between two ranks of one
// node a link of its own, between nodes a link per ordered pair of nodes
// (one NIC each way, shared by every rank of the node); each link has a
// latency and a bandwidth and carries one message at a time, in the order
// they are sent; every rank has one core (the host executor's worker, which
// drives all channels of the rank) that copies and reduces at given rates
// and pays a fixed cost per step. Steps run in plan order per channel,
// waiting for their messages and for a free slot of the FIFO they send into
// (nSlots deep), as the executors do.
//
// Times are computed as soon as possible from each step's dependencies;
// when two messages compete for a link, the one the replay reaches first is
// sent first (not necessarily the one that was ready first), which can only
// overstate a time.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "algorithms/plan.h"
#include "core/status.h"

namespace weft::sim {

struct LinkModel {
  double latencyMicros = 0;
  double gbps = 1;  // GB/s (1e9 bytes per second)
};

struct MachineModel {
  int nranks = 1;
  // The node of every rank (empty: one node).
  std::vector<int> nodeOfRank;
  LinkModel intraNode{0.2, 10.0};  // between two ranks of a node (a FIFO slot through shared memory)
  LinkModel network{10.0, 12.5};   // between two nodes, each direction
  double copyGBps = 20;            // one core copying
  double reduceGBps = 10;          // one core reducing (bytes written)
  double stepMicros = 0.1;         // a step's fixed cost
  // The host executor drives every channel of a rank from one thread; a GPU
  // runs a thread block per channel, each with these rates of its own.
  bool enginePerChannel = false;
  size_t slotBytes = 128 * 1024;  // FIFO slot
  int nSlots = 8;                 // slots per FIFO
};

struct ReplayResult {
  double micros = 0;  // from the first step's start to the last step's end, on any rank
  uint64_t messages = 0;
  // The link busy longest (transfer time), and the bytes it carried.
  double busiestLinkBytes = 0;
  std::string busiestLink;            // "rank 0 -> rank 1" or "node 0 -> node 1"
  double busiestLinkUtilisation = 0;  // its busy time over the call's time
};

// Replays plans (every rank's program for one call of `count` elements of
// `type`) on machine. A plan set that cannot complete (a deadlock) is an
// error naming where each rank waits. tracePath (empty: none): a
// Chrome-trace JSON per rank of the simulated call and its steps, in the
// format of WEFT_TRACE_FILE (exec/trace.h; "%r" becomes the rank, else
// ".<rank>" is appended), so a measured run and its prediction open side by
// side.
Status replay(const PlanSet& plans, size_t count, weftDataType_t type, const MachineModel& machine,
              ReplayResult* result, const std::string& tracePath = "");

}  // namespace weft::sim
