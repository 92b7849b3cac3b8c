// The plan: what a rank does for one collective, as an ordered list of steps
// per channel over abstract chunks (block j of an all-reduce, rank j's slice
// of a reduce-scatter input). The plan is the whole contract between the
// algorithms and their consumers: the host executor, the plan verifier and,
// later, the CUDA executor and the simulator interpret it and decide
// nothing about the algorithm themselves. The builders and the registry
// that names them are in algorithms/registry.h.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "algorithms/step.h"
#include "weft/weft.h"

namespace weft {

// Values travel in slot headers: new ones go at the end.
enum class Collective : uint8_t {
  AllReduce,
  ReduceScatter,
  AllGather,
  Broadcast,
  Reduce,
  Send,
  Recv,
  AllToAll,
  Gather,
  Scatter
};
enum class Algorithm : uint8_t { Ring, OneShot, TwoShot, Tree, Direct, Hierarchical };

const char* collectiveName(Collective collective);
// The collectives that have algorithms (all but send and receive), in
// enumeration order; what the tools list and take by name.
std::span<const Collective> plannedCollectives();
// One of them by name, ignoring case; nullptr when there is none.
const Collective* findPlannedCollective(std::string_view name);
// "AllReduce, ReduceScatter, ...": for messages that list the valid names.
std::string plannedCollectiveNames();
// Broadcast, reduce, gather and scatter have a root.
bool collectiveHasRoot(Collective collective);
// All-reduce, reduce-scatter and reduce combine values with an op.
bool collectiveReduces(Collective collective);
const char* algorithmName(Algorithm algorithm);

// How chunk indices map onto a buffer: all blocks (chunk j at j*blockCount),
// or only this rank's block (reduce-scatter output, all-gather input).
enum class BufferShape : uint8_t { AllBlocks, OwnBlock };

// How a call's count becomes blocks. Whole: one block of count elements.
// Split: count cut into nBlocks nearly equal blocks (all-reduce; the last
// ones may be short or empty). PerRank: every block is count elements
// (reduce-scatter's recvcount, all-gather's sendcount, all-to-all's,
// gather's and scatter's count per rank).
enum class BlockGeometry : uint8_t { Whole, Split, PerRank };

// One rank's program for one collective: every channel's steps, channel
// after channel, in one flat array of plain data (what an executor, on the
// host or copied as it is into GPU memory, interprets). Plans know nothing
// of message size: a chunk index names a block of the buffer, and the
// executor maps it to elements one FIFO slot at a time.
struct Plan {
  Collective collective = Collective::AllReduce;
  Algorithm algorithm = Algorithm::Ring;
  int nranks = 0;
  int rank = 0;  // whose program this is
  int root = -1;
  int nChannels = 1;
  int nBlocks = 1;  // chunk indices run over [0, nBlocks)
  BlockGeometry geometry = BlockGeometry::Whole;
  BufferShape inputShape = BufferShape::AllBlocks;
  BufferShape outputShape = BufferShape::AllBlocks;
  // Scratch chunks the program uses (each one FIFO slot long); 0 or 1.
  int scratchChunks = 0;
  // How many slices a FIFO slot's worth of a block is cut into: 1, or more
  // where a plan forwards each slice across many hops (a deep tree), so
  // that the pipeline fills in smaller pieces. Every rank's plan of a call
  // says the same (geometry.h).
  int slicesPerSlot = 1;
  // Send and receive: every step moves at least one slot, an empty one for
  // a call of no elements (a zero-count message still matches one receive).
  // Collectives of no elements move nothing.
  bool emptyMessages = false;
  // Runs alongside the other concurrent plans of its group (sends and
  // receives, whose posting order must not deadlock), in posting order per
  // peer and direction, before the group's ordered plans (collectives),
  // which run one after another.
  bool concurrent = false;
  // A receiver in another process of the node may read a message of a
  // collective that reduces nothing out of its sender's buffer (cross-memory
  // attach) instead of a slot. False where receiving is the bottleneck: a
  // gather's root reads its peers' blocks faster from slots they filled in
  // parallel, still in cache, than from their buffers (docs/performance.md).
  bool singleCopyAcrossProcesses = true;
  std::vector<Step> steps;                // every channel's, back to back
  std::vector<uint32_t> channelStart{0};  // channel c is steps[channelStart[c], channelStart[c + 1])

  std::span<const Step> channel(int c) const {
    return {steps.data() + channelStart[c], steps.data() + channelStart[c + 1]};
  }
  std::span<Step> channel(int c) { return {steps.data() + channelStart[c], steps.data() + channelStart[c + 1]}; }
  // Appends the next channel's steps.
  void addChannel(const std::vector<Step>& channelSteps);
  // Elements of the input and the output buffer for a call of `count` (the
  // count argument of the call: per rank where the geometry is PerRank).
  size_t inputElements(size_t count) const {
    return geometry == BlockGeometry::PerRank && inputShape == BufferShape::AllBlocks ? count * nBlocks : count;
  }
  size_t outputElements(size_t count) const {
    return geometry == BlockGeometry::PerRank && outputShape == BufferShape::AllBlocks ? count * nBlocks : count;
  }
  // Every step of the program that sends data may publish its source by
  // address, in place too (true for a program that sends nothing). Tokens carry no data:
  // they pass through a slot once per call whatever the slice.
  bool everySendMayPublish() const {
    for (const Step& step : steps)
      if (stepSends(step.op) && !stepIsToken(step.op) && !stepMayPublish(step.flags, /*inPlace=*/true)) return false;
    return true;
  }
  // Bytes the program occupies (what a rank holds per cached plan).
  size_t bytes() const { return sizeof(Plan) + steps.capacity() * sizeof(Step) + channelStart.capacity() * 4; }
  std::string describe(int channel) const;
};

// A concurrent plan's (a send's or a receive's) peer and direction: those
// of its one step.
inline int concurrentPeer(const Plan& plan) {
  const Step& step = plan.channel(0).front();
  return stepSends(step.op) ? step.sendPeer : step.recvPeer;
}
inline bool concurrentSends(const Plan& plan) { return stepSends(plan.channel(0).front().op); }

// Every rank's program for the same call, plans[r] being rank r's: what the
// verifier runs; ranks themselves build only their own.
using PlanSet = std::vector<Plan>;

// ring[i] is the rank at position i; every rank appears once.
using RingOrder = std::vector<int>;
RingOrder identityRing(int nranks);

// The rings a communicator's channels follow (PlanRequest::rings): the ring,
// the same ring backwards, and, where the ring crosses between nodes of
// several ranks, more pairs in which every node's stretch of the ring is
// rotated by one more place. Channel pair k then leaves and enters each node
// at its k-th rank, so the channels cross between nodes on different ranks,
// and so on different NICs (as NCCL's rings do), where the plain ring would
// send every channel through the same two. At most maxRings rings.
std::vector<RingOrder> channelRings(const RingOrder& ring, const std::vector<int>& nodeOfRank, int maxRings);

// What a builder is asked for.
struct PlanRequest {
  Collective collective = Collective::AllReduce;
  int nranks = 1;
  int rank = 0;
  int root = -1;  // broadcast and reduce
  int nChannels = 1;
  // Ring algorithms: channel c follows rings[c % rings.size()]
  // (channelRings: the topology's ring, the same ring backwards, so that
  // both directions of each link are used, and between nodes the same
  // rotated per node). Empty: the identity ring.
  std::vector<RingOrder> rings;
  // The node of every rank (hierarchical algorithms); empty: one node.
  std::vector<int> nodeOfRank;
  // The site of every rank (WEFT_SITEID); empty, or one site: none. With
  // several, the hierarchical plans group ranks by site instead of node.
  std::vector<int> siteOfRank;
};

}  // namespace weft
