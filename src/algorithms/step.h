// A plan's step: plain data (no pointers, no containers), so that the same
// definition serves the host executor, the verifier and device code compiled
// by nvcc (which includes this header and not plan.h).
#pragma once

#include <cstdint>
#include <type_traits>

namespace weft {

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
  // rank of a rooted collective hears from the rank after it in the ring,
  // so a rank that disagrees about the call (its root) is found in the call
  // itself rather than in the next one.
  Notify,  // send a token
  Await,   // receive a token
};

const char* stepOpName(StepOp op);
// constexpr, so that device code compiled by nvcc (--expt-relaxed-constexpr)
// calls the same ones.
constexpr bool stepReceives(StepOp op) {
  return op == StepOp::Recv || op == StepOp::RecvSend || op == StepOp::RecvReduceSend || op == StepOp::RecvReduceCopy ||
         op == StepOp::RecvReduceCopySend || op == StepOp::Await;
}
constexpr bool stepSends(StepOp op) {
  return op == StepOp::Send || op == StepOp::RecvSend || op == StepOp::RecvReduceSend ||
         op == StepOp::RecvReduceCopySend || op == StepOp::Notify;
}
constexpr bool stepIsToken(StepOp op) { return op == StepOp::Notify || op == StepOp::Await; }
constexpr bool stepReduces(StepOp op) {
  return op == StepOp::RecvReduceSend || op == StepOp::RecvReduceCopy || op == StepOp::RecvReduceCopySend ||
         op == StepOp::LocalReduce;
}
// Writes dst.
constexpr bool stepWrites(StepOp op) {
  return op == StepOp::Recv || op == StepOp::RecvSend || op == StepOp::RecvReduceCopy ||
         op == StepOp::RecvReduceCopySend || op == StepOp::Copy || op == StepOp::LocalReduce;
}

// What a step may do beyond its operation (Step::flags).
enum StepFlag : uint8_t {
  // A sending step may hand the receiver the address of what it sends
  // instead of copying it into the slot (ranks of one process, large
  // messages), because nothing overwrites that memory before the receiver
  // has read it.
  kMayPublishAddress = 1u << 0,
  // The first step of a pass (see StepWalk).
  kStartsPass = 1u << 1,
  // The first step of a stage of its pass (see StepWalk).
  kStartsStage = 1u << 2,
  // As kMayPublishAddress, but only where the call's input and output are
  // distinct buffers: in place the source is overwritten while a peer may
  // still read it (all-to-all's blocks).
  kMayPublishOutOfPlace = 1u << 3,
};
// Whether a step may publish its source by address in a call whose input
// and output do (inPlace) or do not overlap.
constexpr bool stepMayPublish(uint8_t flags, bool inPlace) {
  return (flags & kMayPublishAddress) != 0 || ((flags & kMayPublishOutOfPlace) != 0 && !inPlace);
}

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

// The order in which a channel's steps run. They repeat once per slice (a
// FIFO slot's worth of every block); a plan may also cut them into passes,
// each starting at a step flagged kStartsPass, and then a pass runs over
// every slice before the next pass begins. A tree all-reduce sends every
// slice up the trees in one pass and brings them down in the next, so that
// slices follow one another through the tree instead of each waiting for
// its round trip to the root.
//
// A pass may further be cut into stages (kStartsStage), which it runs
// software-pipelined: in round t, stage p runs for slice t-p, the last
// stage (the oldest slice) first, so a pass of P stages over N slices takes
// N+P-1 rounds and stage p of slice s runs after stage p-1 of slice s and
// after stage p of slice s-1. A slice's steps keep their order; what
// changes is that a rank does the next slice's early stages while a late
// stage's data is still on its way (the site-grouped all-reduce reduces a
// slice inside its site while the previous one crosses the long link).
// Both ends of a FIFO must still take its messages in one order (it holds
// when each message is received a fixed number of stages after the one that
// sends it, or when a stage's late messages are the last it sends and the
// first its receiver's next round takes); the verifier checks what a plan
// does.
//
// Every consumer of plans walks them with this.
struct StepWalk {
  uint32_t step = 0;       // the step to run next (the channel's count once done)
  uint32_t passStart = 0;  // the first step of its pass
  size_t slice = 0;        // the slice it runs in
  size_t taken = 0;        // steps run so far
  uint32_t stage = 0;      // the stage of its pass it runs in
  uint32_t stages = 0;     // the pass's stage count (0: not counted yet)
  size_t round = 0;        // stage p runs slice round - p

  // A walk over nSteps steps in `slices` slices (none: done at once).
  constexpr StepWalk(size_t nSteps, size_t slices) {
    if (slices == 0) step = static_cast<uint32_t>(nSteps);
  }
  constexpr StepWalk() = default;
  constexpr bool done(size_t nSteps) const { return step >= nSteps; }
  // Past the step just run, to the next one.
  constexpr void advance(const Step* steps, size_t nSteps, size_t slices) {
    ++taken;
    ++step;
    if (step < nSteps && (steps[step].flags & (kStartsPass | kStartsStage)) == 0) return;
    if (stages == 0) stages = countStages(steps, nSteps, passStart);
    // The next stage down in this round, then the next round from the top.
    for (;;) {
      while (stage > 0) {
        --stage;
        if (round >= stage && round - stage < slices) return enter(steps, nSteps, round - stage);
      }
      if (round + 1 >= slices + stages - 1) break;
      ++round;
      stage = stages;
    }
    if (step >= nSteps) return;  // the last pass is done (step is past the end)
    // The next pass, from its first slice: step is its first step.
    passStart = step;
    slice = 0;
    round = 0;
    stage = 0;
    stages = countStages(steps, nSteps, passStart);
  }

 private:
  // The stages of the pass that starts at `first`.
  static constexpr uint32_t countStages(const Step* steps, size_t nSteps, uint32_t first) {
    uint32_t count = 1;
    for (size_t i = first + 1; i < nSteps && (steps[i].flags & kStartsPass) == 0; ++i)
      if (steps[i].flags & kStartsStage) ++count;
    return count;
  }
  // To the first step of this pass's stage `stage`, in slice s.
  constexpr void enter(const Step* steps, size_t nSteps, size_t s) {
    uint32_t i = passStart;
    for (uint32_t p = 0; p < stage; ++p) {
      ++i;
      while (i < nSteps && (steps[i].flags & kStartsStage) == 0) ++i;
    }
    step = i;
    slice = s;
  }
};

}  // namespace weft
