// The plan: what every rank does for one collective, as an ordered list of
// steps per channel over abstract chunks. Plans know nothing of message size:
// a chunk index names a block of the buffer (block j of an all-reduce, rank
// j's slice of a reduce-scatter input), and the executor maps it to bytes,
// one FIFO slot at a time. The same plan drives the host executor, the plan
// verifier and, later, the CUDA executor and the simulator.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "weft/weft.h"

namespace weft {

enum class Collective : uint8_t { AllReduce, ReduceScatter, AllGather, Broadcast, Reduce, Send, Recv };
enum class Algorithm : uint8_t { Ring, OneShot, TwoShot };

const char* collectiveName(Collective collective);
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

struct Step {
  StepOp op = StepOp::Copy;
  int16_t recvPeer = -1;  // rank received from, for steps that receive
  int16_t sendPeer = -1;  // rank sent to, for steps that send
  ChunkRef src;           // operand read (sent, or reduced with what arrives)
  ChunkRef dst;           // where the result is written
  ChunkRef src2;          // second operand of LocalReduce
  // The block this step moves; it decides how many elements the executor
  // moves (blocks may differ in length). The verifier checks it.
  int32_t block = 0;
  // The last write of a reduced value: weftAvg divides here.
  bool final = false;
  // Tokens only: in the channel's last slice instead of its first.
  bool onLastSlice = false;
};

// How chunk indices map onto a buffer: all blocks (chunk j at j*blockCount),
// or only this rank's block (reduce-scatter output, all-gather input).
enum class BufferShape : uint8_t { AllBlocks, OwnBlock };

struct Plan {
  Collective collective = Collective::AllReduce;
  Algorithm algorithm = Algorithm::Ring;
  int nranks = 0;
  int root = -1;
  int nChannels = 1;
  int nBlocks = 1;  // chunk indices run over [0, nBlocks)
  BufferShape inputShape = BufferShape::AllBlocks;
  BufferShape outputShape = BufferShape::AllBlocks;
  // steps[rank][channel]
  std::vector<std::vector<std::vector<Step>>> steps;

  std::string describe(int rank, int channel) const;
};

// ring[i] is the rank at position i; every rank appears once.
using RingOrder = std::vector<int>;
RingOrder identityRing(int nranks);

std::shared_ptr<const Plan> buildRingPlan(Collective collective, int nranks, int root, int nChannels,
                                          const RingOrder& ring);
// Channel c follows rings[c % rings.size()] (the topology's ring, and the
// same ring backwards so that both directions of each link are used).
std::shared_ptr<const Plan> buildRingPlan(Collective collective, int nranks, int root, int nChannels,
                                          const std::vector<RingOrder>& rings);
// Each rank sends its whole input to every peer and reduces all of them in
// rank order, so every rank computes the same bits. One hop of latency; for
// small all-reduces.
std::shared_ptr<const Plan> buildOneShotPlan(int nranks, int nChannels);
// Reduce-scatter then all-gather, each straight between every pair: every
// rank sends block j of its input to rank j, which reduces its block in rank
// order and sends the result to every rank. Same bytes per rank as the ring,
// but two hops of latency instead of 2(n-1), and no chain of ranks waiting
// on each other: what ranks sharing one node's memory (and, when ranks
// outnumber cores, one core) want. All-reduce, reduce-scatter, all-gather.
std::shared_ptr<const Plan> buildTwoShotPlan(Collective collective, int nranks, int nChannels);

}  // namespace weft
