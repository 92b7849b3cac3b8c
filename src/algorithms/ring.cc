// Ring algorithms.
//
// All-reduce on n ranks is a reduce-scatter followed by an all-gather around
// the ring. The buffer is cut into n blocks. In the reduce-scatter, at step s
// the rank at ring position q sends block ring[q-1-s] (its own input at s=0,
// the partial sum it just received afterwards) to the next rank and receives
// block ring[q-2-s] from the previous one, adding its input. After n-1 steps
// position q holds block ring[q] reduced over all ranks; the all-gather then
// passes the finished blocks n-1 more hops. Each rank sends and receives
// 2(n-1)/n of the buffer, the minimum for an all-reduce (busbw factor
// 2(n-1)/n); latency is 2(n-1) hops, which is why small messages take the
// one-shot plan instead. Every block is further cut into slot-sized pieces by
// the executor, so consecutive steps pipeline through the FIFOs.
//
// Reduce-scatter and all-gather are the two halves alone ((n-1)/n each).
// Broadcast and reduce are chains along the ring, from the root or ending at
// it: n-1 hops of latency, but pipelined, so for large messages each link
// carries the buffer once. Before the data, every rank passes a token to its
// ring successor, so each rank checks the root with the rank before it
// during the call; no data waits for a token.
#include "algorithms/plan.h"

namespace weft {
namespace {

struct RingView {
  const RingOrder& ring;
  int position;
  int n;
  int at(int offset) const { return ring[((position + offset) % n + n) % n]; }
};

ChunkRef in(int chunk) { return {BufferId::Input, chunk}; }
ChunkRef out(int chunk) { return {BufferId::Output, chunk}; }

// block: what the step moves; by default the chunk of its input/output
// operand (steps on scratch alone must say it).
Step makeStep(StepOp op, int recvPeer, int sendPeer, ChunkRef src, ChunkRef dst, bool final = false, int block = -1) {
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

Step tokenStep(StepOp op, int peer, bool onLastSlice) {
  Step step = makeStep(op, op == StepOp::Await ? peer : -1, op == StepOp::Notify ? peer : -1, {}, {});
  step.onLastSlice = onLastSlice;
  return step;
}

// The reduce-scatter half: ends with block ring[q] reduced. When withAllGather
// is set, the last step also sends that block on.
void reduceScatterSteps(const RingView& v, bool withAllGather, std::vector<Step>& steps) {
  int next = v.at(1), prev = v.at(-1);
  steps.push_back(makeStep(StepOp::Send, -1, next, in(v.at(-1)), {}));
  for (int s = 1; s <= v.n - 2; ++s)
    steps.push_back(makeStep(StepOp::RecvReduceSend, prev, next, in(v.at(-1 - s)), {}));
  int own = v.at(0);
  if (withAllGather)
    steps.push_back(makeStep(StepOp::RecvReduceCopySend, prev, next, in(own), out(own), true));
  else
    steps.push_back(makeStep(StepOp::RecvReduceCopy, prev, -1, in(own), out(own), true));
}

// The all-gather half after block ring[q] is in place and was sent on.
void allGatherTail(const RingView& v, std::vector<Step>& steps) {
  int next = v.at(1), prev = v.at(-1);
  for (int k = 1; k <= v.n - 2; ++k) steps.push_back(makeStep(StepOp::RecvSend, prev, next, {}, out(v.at(-k))));
  steps.push_back(makeStep(StepOp::Recv, prev, -1, {}, out(v.at(-(v.n - 1)))));
}

std::vector<Step> rankSteps(Collective collective, const RingView& v, int root) {
  std::vector<Step> steps;
  int n = v.n;
  int next = v.at(1), prev = v.at(-1);
  int self = v.at(0);
  switch (collective) {
    case Collective::AllReduce:
      if (n == 1) {
        steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0), true));
        break;
      }
      reduceScatterSteps(v, true, steps);
      allGatherTail(v, steps);
      break;
    case Collective::ReduceScatter:
      if (n == 1) {
        steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0), true));
        break;
      }
      reduceScatterSteps(v, false, steps);
      break;
    case Collective::AllGather:
      steps.push_back(makeStep(StepOp::Copy, -1, -1, in(self), out(self)));
      if (n == 1) break;
      steps.push_back(makeStep(StepOp::Send, -1, next, in(self), {}));
      allGatherTail(v, steps);
      break;
    case Collective::Broadcast:
    case Collective::Reduce: {
      if (n == 1) {
        steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0), collective == Collective::Reduce));
        break;
      }
      // Every rank first hands its successor a token with the call's
      // description and checks its predecessor's, so ranks that disagree on
      // the root are found in this call, whoever believes to be the root
      // (even none). Where data follows from the predecessor, the token
      // travels just ahead of it and is checked first, at no cost. The
      // ranks that receive nothing else from it (the broadcast root, the
      // reduce chain's start) check it in their last slice, so that their
      // data leaves at once; the executor takes such a token early whenever
      // the channel would otherwise wait, so a disagreement cannot deadlock.
      bool receivesNoData =
          self == root ? collective == Collective::Broadcast : collective == Collective::Reduce && prev == root;
      steps.push_back(tokenStep(StepOp::Notify, next, false));
      if (!receivesNoData) steps.push_back(tokenStep(StepOp::Await, prev, false));
      if (collective == Collective::Broadcast) {
        // Chain root -> ring successor -> ... ; the rank before the root ends it.
        if (self == root) {
          steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0)));
          steps.push_back(makeStep(StepOp::Send, -1, next, in(0), {}));
        } else if (next == root) {
          steps.push_back(makeStep(StepOp::Recv, prev, -1, {}, out(0)));
        } else {
          steps.push_back(makeStep(StepOp::RecvSend, prev, next, {}, out(0)));
        }
      } else {
        // Chain starting after the root and ending at it.
        if (self == root)
          steps.push_back(makeStep(StepOp::RecvReduceCopy, prev, -1, in(0), out(0), true));
        else if (prev == root)
          steps.push_back(makeStep(StepOp::Send, -1, next, in(0), {}));
        else
          steps.push_back(makeStep(StepOp::RecvReduceSend, prev, next, in(0), {}));
      }
      if (receivesNoData) steps.push_back(tokenStep(StepOp::Await, prev, true));
      break;
    }
    case Collective::Send:
    case Collective::Recv: break;
  }
  return steps;
}

// Appends the steps that reduce block `block` over all ranks in rank order
// (in_0 ⊕ in_1 ⊕ ...), receiving every other rank's piece, so that every
// rank that computes it gets the same bits. Partial sums live in scratch;
// the output is written only by the last step, so an in-place output is
// never overwritten while it is still an input.
void appendRankOrderReduction(int rank, int nranks, int block, std::vector<Step>& steps) {
  ChunkRef acc;
  for (int p = 0; p < nranks; ++p) {
    bool last = p == nranks - 1;
    ChunkRef dst = last ? out(block) : ChunkRef{BufferId::Scratch, 0};
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

// A plan's header: collective, algorithm, sizes, and which buffers hold only
// this rank's block (reduce-scatter output, all-gather input).
std::shared_ptr<Plan> newPlan(Collective collective, Algorithm algorithm, int nranks, int root, int nChannels,
                              int nBlocks) {
  auto plan = std::make_shared<Plan>();
  plan->collective = collective;
  plan->algorithm = algorithm;
  plan->nranks = nranks;
  plan->root = root;
  plan->nChannels = nChannels;
  plan->nBlocks = nBlocks;
  if (collective == Collective::ReduceScatter) plan->outputShape = BufferShape::OwnBlock;
  if (collective == Collective::AllGather) plan->inputShape = BufferShape::OwnBlock;
  plan->steps.resize(static_cast<size_t>(nranks));
  return plan;
}

}  // namespace

std::shared_ptr<const Plan> buildRingPlan(Collective collective, int nranks, int root, int nChannels,
                                          const RingOrder& ring) {
  return buildRingPlan(collective, nranks, root, nChannels, std::vector<RingOrder>{ring});
}

std::shared_ptr<const Plan> buildRingPlan(Collective collective, int nranks, int root, int nChannels,
                                          const std::vector<RingOrder>& rings) {
  bool blocked = collective == Collective::AllReduce || collective == Collective::ReduceScatter ||
                 collective == Collective::AllGather;
  // One rank: a single block, which is its own either way.
  auto plan = newPlan(collective, Algorithm::Ring, nranks, root, nChannels, blocked && nranks > 1 ? nranks : 1);
  for (int rank = 0; rank < nranks; ++rank) plan->steps[rank].resize(static_cast<size_t>(nChannels));
  for (int channel = 0; channel < nChannels; ++channel) {
    const RingOrder& ring = rings[static_cast<size_t>(channel) % rings.size()];
    for (int position = 0; position < nranks; ++position) {
      RingView view{ring, position, nranks};
      plan->steps[ring[position]][channel] = rankSteps(collective, view, root);
    }
  }
  return plan;
}

std::shared_ptr<const Plan> buildOneShotPlan(int nranks, int nChannels) {
  auto plan = newPlan(Collective::AllReduce, Algorithm::OneShot, nranks, -1, nChannels, 1);
  for (int rank = 0; rank < nranks; ++rank) {
    std::vector<Step> steps;
    for (int k = 1; k < nranks; ++k) {
      int peer = (rank + k) % nranks;
      steps.push_back(makeStep(StepOp::Send, -1, peer, in(0), {}));
    }
    if (nranks == 1)
      steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0), true));
    else
      appendRankOrderReduction(rank, nranks, 0, steps);
    plan->steps[rank].assign(static_cast<size_t>(nChannels), steps);
  }
  return plan;
}

// Two-shot (see plan.h). Per rank and slot-sized iteration: n-1 sends of
// input blocks, n-1 receives reduced in rank order into the rank's own
// block, then n-1 sends of that block and n-1 receives of the others.
std::shared_ptr<const Plan> buildTwoShotPlan(Collective collective, int nranks, int nChannels) {
  auto plan = newPlan(collective, Algorithm::TwoShot, nranks, -1, nChannels, nranks);
  bool reduceScatter = collective == Collective::AllReduce || collective == Collective::ReduceScatter;
  bool allGather = collective == Collective::AllReduce || collective == Collective::AllGather;
  for (int rank = 0; rank < nranks; ++rank) {
    std::vector<Step> steps;
    if (nranks == 1) {
      steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0), reduceScatter));
      plan->nBlocks = 1;
      plan->steps[rank].assign(static_cast<size_t>(nChannels), steps);
      continue;
    }
    if (reduceScatter) {
      for (int k = 1; k < nranks; ++k) {
        int peer = (rank + k) % nranks;
        steps.push_back(makeStep(StepOp::Send, -1, peer, in(peer), {}));
      }
      appendRankOrderReduction(rank, nranks, rank, steps);
    } else {
      steps.push_back(makeStep(StepOp::Copy, -1, -1, in(rank), out(rank)));
    }
    if (allGather) {
      for (int k = 1; k < nranks; ++k) steps.push_back(makeStep(StepOp::Send, -1, (rank + k) % nranks, out(rank), {}));
      for (int k = 1; k < nranks; ++k) {
        int peer = (rank - k + nranks) % nranks;
        steps.push_back(makeStep(StepOp::Recv, peer, -1, {}, out(peer)));
      }
    }
    plan->steps[rank].assign(static_cast<size_t>(nChannels), steps);
  }
  return plan;
}

}  // namespace weft
