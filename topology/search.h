// Search over the machine graph: the ring through a set of devices that
// maximises its bottleneck bandwidth (and crosses sockets as few times as
// possible), a double binary tree over that ring, and the nearest NIC for
// each GPU.
#pragma once

#include <vector>

#include "topology/machine.h"

namespace weft {

struct RingChoice {
  std::vector<int> order;     // indices into the device list given
  double bottleneckGBps = 0;  // slowest hop (0: unknown)
  PathClass worstClass = PathClass::Same;
  int socketCrossings = 0;
};

// devices: node indices (GPUs of one node, say). Exhaustive for up to 9
// devices, 2-opt improvement of the socket-ordered ring beyond.
RingChoice searchRing(const MachineTopology& topo, const std::vector<int>& devices);

// NCCL-style double binary tree over n ranks in ring order: two trees in
// which every rank is a leaf in one and an inner node in at most the other,
// so both halves of the data have full bandwidth. parent[t][r] is -1 at roots.
struct DoubleTree {
  std::vector<int> parent[2];
  std::vector<std::vector<int>> children[2];
};
DoubleTree buildDoubleTree(int n);

// The ring order for host ranks of one node: ranks grouped by the NUMA node
// they run on (then by rank), so the ring crosses between NUMA nodes the
// minimum number of times. numaOfRank[r] is -1 when unknown.
std::vector<int> hostRingOrder(const std::vector<int>& numaOfRank);
// The ring over several nodes: nodes in the order of their lowest rank, the
// ranks of each node contiguous and ordered by keyOfRank (ties by rank), so
// that every ring enters and leaves each node once. Communicators pass each
// rank's place in its node's searched ring, or its NUMA node where there is
// no usable topology.
std::vector<int> multiNodeRingOrder(const std::vector<int>& nodeOfRank, const std::vector<int>& keyOfRank);

// Channels a ring carries: what its slowest hop moves, at kChannelGBps per
// channel (about what one GPU thread block or one host thread keeps busy),
// at least 1 (also when the bandwidth is unknown) and at most maxChannels.
constexpr double kChannelGBps = 20.0;
int channelsForRing(const RingChoice& ring, int maxChannels);

// The ring of one node's ranks over the machine graph. deviceOfRank[i] is the
// node each rank runs on (its GPU, or its NUMA node for host ranks); ranks
// sharing a device are contiguous, and the devices follow searchRing. Odd
// channels run the ring backwards, so both directions of every link carry
// data.
struct RankRing {
  std::vector<int> order;  // indices into deviceOfRank
  RingChoice devices;      // the ring over the distinct devices
  int channels = 1;
};
RankRing searchRankRing(const MachineTopology& topo, const std::vector<int>& deviceOfRank, int maxChannels);

// The NIC closest to each GPU (index into topo.nics, -1 without NICs).
std::vector<int> nearestNics(const MachineTopology& topo);

// The cost model's all-reduce bus bandwidth for a ring whose slowest hop is
// bottleneckGBps: a ring all-reduce moves 2(n-1)/n of the buffer over every
// hop, so busbw equals the bottleneck.
inline double ringAllReduceBusBw(const RingChoice& ring) { return ring.bottleneckGBps; }

}  // namespace weft
