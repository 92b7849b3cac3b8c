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

// Scratch is a slot-sized buffer of the executor's own (chunk 0 only).
enum class BufferId : uint8_t { None, Input, Output, Scratch };

struct ChunkRef {
  BufferId buffer = BufferId::None;
  int32_t chunk = -1;
};

enum class StepOp : uint8_t {
  Send,                // send src
  Recv,                // dst = received
  RecvSend,            // dst = received, and send it on
  RecvReduceSend,      // send received ⊕ src
  RecvReduceCopy,      // dst = received ⊕ src
  RecvReduceCopySend,  // dst = received ⊕ src, and send dst on
  Copy,                // dst = src
  LocalReduce,         // dst = src ⊕ src2
  // Tokens: a slot with the call's description and no data, once per
  // channel (in the first slice, or the last one with onLastSlice). Every
  // rank of a broadcast or reduce hears from the rank before it, so a rank
  // that disagrees about the call (its root) is found in the call itself
  // rather than in the next one.
  Notify,  // send a token
  Await,   // receive a token
};

const char* stepOpName(StepOp op);
bool stepReceives(StepOp op);
bool stepSends(StepOp op);
bool stepReduces(StepOp op);
bool stepWrites(StepOp op);  // writes dst
bool stepIsToken(StepOp op);

// What a step may do beyond its operation (Step::flags).
enum StepFlag : uint8_t {
  // A sending step may hand the receiver the address of what it sends
  // instead of copying it into the slot (ranks of one process, large
  // messages), because nothing overwrites that memory before the receiver
  // has read it.
  kMayPublishAddress = 1u << 0,
};

struct Step {
  StepOp op = StepOp::Copy;
  uint8_t flags = 0;      // StepFlag
  int16_t recvPeer = -1;  // rank received from, for steps that receive
  // Fan-in (a tree node with two children): a second rank received from in
  // the same step, its slot reduced in after recvPeer's, so both are awaited
  // together. Reducing steps only (RecvReduceSend, RecvReduceCopy,
  // RecvReduceCopySend); -1 otherwise.
  int16_t recvPeer2 = -1;
  int16_t sendPeer = -1;  // rank sent to, for steps that send
  ChunkRef src;           // operand read (sent, or reduced with what arrives)
  // Where the result is written. A RecvReduceSend that publishes its partial
  // sum by address writes it here first (an output chunk that nothing else
  // needs until it is overwritten with the final value); without dst it may
  // not publish.
  ChunkRef dst;
  ChunkRef src2;  // second operand of LocalReduce
  // The block this step moves; it decides how many elements the executor
  // moves (blocks may differ in length). The verifier checks it.
  int32_t block = 0;
  // The last write of a reduced value: weftAvg divides here (a Recv that
  // writes a sum reduced elsewhere divides it too).
  bool final = false;
  // Tokens only: in the channel's last slice instead of its first.
  bool onLastSlice = false;
};
static_assert(std::is_trivially_copyable_v<Step>, "plans are copied to device memory as they are");
inline bool stepFansIn(const Step& step) { return step.recvPeer2 >= 0; }

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
  // Send and receive: every step moves at least one slot, an empty one for
  // a call of no elements (a zero-count message still matches one receive).
  // Collectives of no elements move nothing.
  bool emptyMessages = false;
  // Runs alongside the other concurrent plans of its group (sends and
  // receives, whose posting order must not deadlock), in posting order per
  // peer and direction, before the group's ordered plans (collectives),
  // which run one after another.
  bool concurrent = false;
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
  // Bytes the program occupies (what a rank holds per cached plan).
  size_t bytes() const { return sizeof(Plan) + steps.capacity() * sizeof(Step) + channelStart.capacity() * 4; }
  std::string describe(int channel) const;
};

// Every rank's program for the same call, plans[r] being rank r's: what the
// verifier runs; ranks themselves build only their own.
using PlanSet = std::vector<Plan>;

// ring[i] is the rank at position i; every rank appears once.
using RingOrder = std::vector<int>;
RingOrder identityRing(int nranks);

// What a builder is asked for.
struct PlanRequest {
  Collective collective = Collective::AllReduce;
  int nranks = 1;
  int rank = 0;
  int root = -1;  // broadcast and reduce
  int nChannels = 1;
  // Ring algorithms: channel c follows rings[c % rings.size()] (the
  // topology's ring, and the same ring backwards, so that both directions
  // of each link are used). Empty: the identity ring.
  std::vector<RingOrder> rings;
  // The node of every rank (hierarchical algorithms); empty: one node.
  std::vector<int> nodeOfRank;
};

}  // namespace weft
