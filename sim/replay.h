// weft-sim's core: every rank's plan for one call, replayed on a modelled
// machine. The simulator consumes the plans the algorithms build (the same
// registry, the same builders) and cuts them into slices with the
// executors' own geometry (exec/geometry.h), so it never re-implements an
// algorithm: what it times is what would run.
//
// The model. Ranks sit in nodes, nodes under leaf switches, leaves in sites.
// A message goes from one rank to another over a path of links:
//   - inside a node, a link per ordered pair of ranks (shared memory), or
//     with intraSwitched each rank's port out of and into a switch
//     (NVSwitch), which all its transfers share;
//   - between nodes, the sender's NIC out and the receiver's NIC in (rails:
//     local rank i uses NIC i % nicsPerNode); when the two are under
//     different leaves, or on different rails of leaves, also the sender
//     leaf's uplink and the receiver leaf's downlink (a leaf per rail of
//     nodesPerLeaf nodes, its uplink the nodes' NIC rate over the
//     oversubscription ratio);
//   - between sites, also the WAN link from one site to the other;
//   - inside a node, with nodeMemoryGBps, also the node's memory.
// Every link has a bandwidth; a path's latency is that of its widest tier
// (the node's, the network's, plus the WAN's). Transfers in flight at the
// same time share the links max-min fairly (every flow gets its fair
// share of its most contended link, and what a flow cannot use goes to
// the others), recomputed whenever one starts or ends. A connection (the
// FIFO from one rank to another on one channel) moves one message at a
// time, in order.
//
// Every rank has one engine (the host executor's worker, which drives all
// channels of the rank; with enginePerChannel, one per channel as GPU
// blocks are) that copies and reduces at given rates and pays a fixed cost
// per step. Steps run in plan order per channel, each when its messages
// have arrived, a slot of the FIFO it sends into is free (nSlots deep) and
// its engine is idle; its outgoing message leaves when it ends, and the
// slots it read are free again then. The replay is a discrete-event
// simulation in time order, so it is deterministic.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "algorithms/plan.h"
#include "algorithms/registry.h"
#include "core/status.h"

namespace weft::sim {

struct LinkModel {
  double latencyMicros = 0;
  double gbps = 1;  // GB/s (1e9 bytes per second)
};

struct MachineModel {
  int nranks = 1;
  // The node of every rank (empty: one node). Nodes are numbered 0.. and
  // hold equally many ranks when leaves or aggregation are used.
  std::vector<int> nodeOfRank;
  LinkModel intraNode{0.2, 10.0};  // between two ranks of a node, or a rank's switch port
  bool intraSwitched = false;      // a port per rank each way (NVSwitch) instead of a link per pair
  // GB/s of the link from local rank i to local rank j at [i * ranksPerNode
  // + j], where the node's pairs differ (a topology's NVLink and PCIe paths);
  // empty, or 0 for a pair: intraNode.gbps.
  std::vector<double> pairGBps;
  LinkModel network{10.0, 12.5};  // one NIC, each direction
  int nicsPerNode = 1;            // rails: local rank i uses NIC i % nicsPerNode
  int nodesPerLeaf = 0;           // nodes under one leaf switch (of each rail); 0: one non-blocking switch
  double oversubscription = 1;    // a leaf's downlinks over its uplinks
  // The site of every node (empty: one site); sites are joined by WAN links.
  std::vector<int> siteOfNode;
  LinkModel wan{5000.0, 1.25};  // from one site to another, each direction; latency one way
  // Whether each node has a WAN link of its own to every other site (as
  // where every node's traffic to the far sites is shaped: netns.sh wan)
  // instead of one link per pair of sites that all their nodes share.
  bool wanPerNode = false;
  // A node's memory, which every transfer inside the node crosses (0: not
  // modelled): what all its cores copying at once reach together.
  double nodeMemoryGBps = 0;
  // Cores a node's ranks share (0: a core each). With more ranks than
  // cores, an engine runs at cores / ranks of its rates and a hand-off
  // inside the node costs switchMicros (the peer has to be scheduled).
  int coresPerNode = 0;
  double switchMicros = 0;
  double copyGBps = 20;     // one engine copying
  double reduceGBps = 10;   // one engine reducing (bytes written)
  double stepMicros = 0.1;  // a step's fixed cost
  // The host executor drives every channel of a rank from one thread; a GPU
  // runs a thread block per channel, each with these rates of its own.
  bool enginePerChannel = false;
  size_t slotBytes = 128 * 1024;  // FIFO slot
  int nSlots = 8;                 // slots per FIFO
};

struct ReplayResult {
  double micros = 0;  // from the first step's start to the last step's end, on any rank
  uint64_t messages = 0;
  // The link busy longest (its bytes over its bandwidth), and the bytes it carried.
  double busiestLinkBytes = 0;
  std::string busiestLink;            // "rank 0 -> rank 1", "node 0 NIC 0 out", "site 0 -> site 1", ...
  double busiestLinkUtilisation = 0;  // its busy time over the call's time
  // Aggregation (simulate()): the ranks replayed (all, or one group's), and
  // the count replayed (rounded up to equal blocks when aggregated).
  int replayedRanks = 0;
  size_t replayedCount = 0;
  int replayedChannels = 0;
  bool foldedChannels = false;  // the channels ran the same steps and were replayed as one
  // When each replayed rank's last step ended.
  std::vector<double> rankMicros;
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

enum class Aggregation { Auto, Never, Always };

// Builds entry's plans for request and replays them. Aggregation: when
// shifting every rank by a group of G ranks (a leaf's nodes, or a node's
// ranks) maps every plan onto another (the same steps, peers shifted by G,
// blocks renamed) and the machine onto itself, only the first group is
// replayed: a message to a rank of another group is delivered to the
// rank that stands in the same place in the first group, and the links of
// other groups, which carry the same flows shifted, are those of the first.
// Channels that run the same steps are folded into one flow standing for
// all of them (C flows' share of every link, C engines' rates or one
// engine's C step costs, slots C times as large). This is exact when every
// block (and channel's share of one) has the same length, so the count is
// rounded up to blocks of equal length (the executors' blocks are 64-byte
// multiples: up to 64 bytes more a block, which a small call's time hardly
// sees and a large one's not at all). Auto aggregates when all ranks' plans would hold more than
// a few million steps; Always whenever the plans allow; an error says why
// they do not.
Status simulate(const AlgorithmEntry& entry, PlanRequest request, size_t count, weftDataType_t type,
                const MachineModel& machine, ReplayResult* result, Aggregation aggregation = Aggregation::Auto,
                const std::string& tracePath = "");

}  // namespace weft::sim
