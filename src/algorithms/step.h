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
  // rank of a broadcast or reduce hears from the rank before it, so a rank
  // that disagrees about the call (its root) is found in the call itself
  // rather than in the next one.
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

// The order in which a channel's steps run. They repeat once per slice (a
// FIFO slot's worth of every block); a plan may also cut them into passes,
// each starting at a step flagged kStartsPass, and then a pass runs over
// every slice before the next pass begins. A tree all-reduce sends every
// slice up the trees in one pass and brings them down in the next, so that
// slices follow one another through the tree instead of each waiting for
// its round trip to the root. Every consumer of plans walks them with this.
struct StepWalk {
  uint32_t step = 0;       // the step to run next (the channel's count once done)
  uint32_t passStart = 0;  // the first step of its pass
  size_t slice = 0;        // the slice it runs in
  size_t taken = 0;        // steps run so far

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
    if (step < nSteps && (steps[step].flags & kStartsPass) == 0) return;
    if (slice + 1 < slices) {  // the pass again, one slice on
      ++slice;
      step = passStart;
    } else if (step < nSteps) {  // the next pass, from the first slice
      passStart = step;
      slice = 0;
    }
  }
};

}  // namespace weft
