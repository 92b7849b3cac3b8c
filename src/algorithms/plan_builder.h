// What plan builders share: chunk references, step constructors, the
// rank-order reduction, and the plan header. An algorithm is one file of
// builder code using these, plus its line in registry.cc.
#pragma once

#include <algorithm>
#include <vector>

#include "algorithms/plan.h"

namespace weft::plan_builder {

inline ChunkRef in(int chunk) { return {BufferId::Input, chunk}; }
inline ChunkRef out(int chunk) { return {BufferId::Output, chunk}; }
inline ChunkRef scratch() { return {BufferId::Scratch, 0}; }

// block: what the step moves; by default the chunk of its input/output
// operand (steps on scratch alone must say it).
inline Step makeStep(StepOp op, int recvPeer, int sendPeer, ChunkRef src, ChunkRef dst, bool final = false,
                     int block = -1) {
  Step step;
  step.op = op;
  step.recvPeer = static_cast<int16_t>(recvPeer);
  step.sendPeer = static_cast<int16_t>(sendPeer);
  step.src = src;
  step.dst = dst;
  step.final = final;
  if (block < 0) {
    bool srcBuffer = src.buffer == BufferId::Input || src.buffer == BufferId::Output;
    bool dstBuffer = dst.buffer == BufferId::Input || dst.buffer == BufferId::Output;
    block = srcBuffer ? src.chunk : dstBuffer ? dst.chunk : 0;
  }
  step.block = block;
  return step;
}

// A step whose sent data stays put until the receiver has read it, so it may
// publish its address (see kMayPublishAddress).
inline Step publishing(Step step) {
  step.flags |= kMayPublishAddress;
  return step;
}

// A step whose sent data stays put until the receiver has read it where the
// call is out of place, so it may publish its address there (see
// kMayPublishOutOfPlace).
inline Step publishingOutOfPlace(Step step) {
  step.flags |= kMayPublishOutOfPlace;
  return step;
}

// A reducing step that also receives from peer2 and reduces that in after
// its recvPeer's slot (see Step::recvPeer2).
inline Step fanningIn(Step step, int peer2) {
  step.recvPeer2 = static_cast<int16_t>(peer2);
  return step;
}

// The first step of a pass: the steps before it run over every slice
// before it runs (see StepWalk).
inline Step startingPass(Step step) {
  step.flags |= kStartsPass;
  return step;
}

// Cuts [first, last) into three stages (see StepWalk) at the first and the
// last step there that receives from `peer`: what comes before the first
// receive (and its send to that ring) runs for the next slice while the
// data is on its way, and what follows the last runs for the previous one.
inline void stagedAroundReceivesFrom(int peer, size_t first, size_t last, std::vector<Step>& steps) {
  last = std::min(last, steps.size());
  auto fromPeer = [&](size_t i) {
    return stepReceives(steps[i].op) && (steps[i].recvPeer == peer || steps[i].recvPeer2 == peer);
  };
  size_t i = first, j = last;
  while (i < last && !fromPeer(i)) ++i;
  while (j > i && !fromPeer(j - 1)) --j;
  if (i == last) return;
  steps[i].flags |= kStartsStage;
  if (j - 1 > i) steps[j - 1].flags |= kStartsStage;
}

inline Step tokenStep(StepOp op, int peer, bool onLastSlice) {
  Step step = makeStep(op, op == StepOp::Await ? peer : -1, op == StepOp::Notify ? peer : -1, {}, {});
  step.onLastSlice = onLastSlice;
  return step;
}

// The tokens of a rooted plan (see StepOp::Notify): this rank first tells
// its ring predecessor the call's description, and checks its successor's
// before the first data that successor sends it (in one FIFO the token comes
// first), or in its last slice when it sends none. Every rank checks one
// neighbour, the root too, so ranks that disagree about the root are found
// in the call whoever believes to be the root (even none). The tokens run
// against the ring because data mostly runs along it: a rank then waits for
// its successor to have started the call, which it does as soon as it has
// finished the one before, so calls in a row overlap along the chain. Run
// the other way, the root of a chain would wait for its chain's last rank to
// start, that is, for the whole previous call to have crossed the chain.
inline void withRingTokens(int next, int prev, std::vector<Step>& steps) {
  auto fromNext = std::find_if(steps.begin(), steps.end(), [&](const Step& step) {
    return stepReceives(step.op) && (step.recvPeer == next || step.recvPeer2 == next);
  });
  bool data = fromNext != steps.end();
  steps.insert(fromNext, tokenStep(StepOp::Await, next, !data));
  steps.insert(steps.begin(), tokenStep(StepOp::Notify, prev, false));
}

// Appends the steps that reduce block `block` over all ranks in rank order
// (in_0 ⊕ in_1 ⊕ ...), receiving every other rank's piece, so that every
// rank that computes it gets the same bits. Partial sums live in scratch;
// the output is written only by the last step, so an in-place output is
// never overwritten while it is still an input.
inline void appendRankOrderReduction(int rank, int nranks, int block, std::vector<Step>& steps) {
  ChunkRef acc;
  for (int p = 0; p < nranks; ++p) {
    bool last = p == nranks - 1;
    ChunkRef dst = last ? out(block) : scratch();
    if (p == 0) {
      if (rank == 0) {
        acc = in(block);
      } else {
        steps.push_back(makeStep(StepOp::Recv, 0, -1, {}, dst, false, block));
        acc = dst;
      }
    } else if (p == rank) {
      Step step = makeStep(StepOp::LocalReduce, -1, -1, acc, dst, last, block);
      step.src2 = in(block);
      steps.push_back(step);
      acc = dst;
    } else {
      steps.push_back(makeStep(StepOp::RecvReduceCopy, p, -1, acc, dst, last, block));
      acc = dst;
    }
  }
}

// A plan's header: which buffers hold only this rank's block (reduce-scatter
// output, all-gather input) and how the count becomes nBlocks blocks.
inline Plan newPlan(const PlanRequest& request, Algorithm algorithm, int nBlocks) {
  Plan plan;
  plan.collective = request.collective;
  plan.algorithm = algorithm;
  plan.nranks = request.nranks;
  plan.rank = request.rank;
  plan.root = request.root;
  plan.nChannels = request.nChannels;
  plan.nBlocks = nBlocks;
  bool perRank = request.collective != Collective::AllReduce && request.collective != Collective::Broadcast &&
                 request.collective != Collective::Reduce;
  if (nBlocks == 1)
    plan.geometry = BlockGeometry::Whole;
  else
    plan.geometry = perRank ? BlockGeometry::PerRank : BlockGeometry::Split;
  if (request.collective == Collective::ReduceScatter) plan.outputShape = BufferShape::OwnBlock;
  if (request.collective == Collective::AllGather) plan.inputShape = BufferShape::OwnBlock;
  if (request.collective == Collective::Gather) plan.inputShape = BufferShape::OwnBlock;
  if (request.collective == Collective::Scatter) plan.outputShape = BufferShape::OwnBlock;
  return plan;
}

// Counts the scratch chunks the finished plan uses.
inline void noteScratch(Plan& plan) {
  plan.scratchChunks = 0;
  for (const Step& step : plan.steps)
    if (step.src.buffer == BufferId::Scratch || step.dst.buffer == BufferId::Scratch ||
        step.src2.buffer == BufferId::Scratch)
      plan.scratchChunks = 1;
}

}  // namespace weft::plan_builder
