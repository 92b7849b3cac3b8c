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
// ring predecessor, so each rank checks the root with the rank after it
// during the call (withRingTokens); no data waits for a token.
#include "algorithms/plan.h"

#include "algorithms/plan_builder.h"
#include "algorithms/registry.h"

namespace weft {
namespace {

using namespace plan_builder;

struct RingView {
  const RingOrder& ring;
  int position;
  int n;
  int at(int offset) const { return ring[((position + offset) % n + n) % n]; }
};

// The reduce-scatter half: ends with block ring[q] reduced. When withAllGather
// is set, the last step also sends that block on.
// Sent data may go by address: inputs are only read, and every output chunk
// is written before it is sent and not again until its receiver has read it.
// A partial sum of an all-reduce gets a home for that in its own block of
// the output (which the all-gather overwrites only after the next rank has
// read it); reduce-scatter outputs hold one block and have no such home.
void reduceScatterSteps(const RingView& v, bool withAllGather, std::vector<Step>& steps) {
  int next = v.at(1), prev = v.at(-1);
  steps.push_back(publishing(makeStep(StepOp::Send, -1, next, in(v.at(-1)), {})));
  for (int s = 1; s <= v.n - 2; ++s) {
    int chunk = v.at(-1 - s);
    if (withAllGather)
      steps.push_back(publishing(makeStep(StepOp::RecvReduceSend, prev, next, in(chunk), out(chunk))));
    else
      steps.push_back(makeStep(StepOp::RecvReduceSend, prev, next, in(chunk), {}));
  }
  int own = v.at(0);
  if (withAllGather)
    steps.push_back(publishing(makeStep(StepOp::RecvReduceCopySend, prev, next, in(own), out(own), true)));
  else
    steps.push_back(makeStep(StepOp::RecvReduceCopy, prev, -1, in(own), out(own), true));
}

// The all-gather half after block ring[q] is in place and was sent on.
void allGatherTail(const RingView& v, std::vector<Step>& steps) {
  int next = v.at(1), prev = v.at(-1);
  for (int k = 1; k <= v.n - 2; ++k)
    steps.push_back(publishing(makeStep(StepOp::RecvSend, prev, next, {}, out(v.at(-k)))));
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
      if (n == 1) {
        steps.push_back(makeStep(StepOp::Copy, -1, -1, in(self), out(self)));
        break;
      }
      // The own block leaves first; its copy into the output overlaps the
      // successor's receive.
      steps.push_back(publishing(makeStep(StepOp::Send, -1, next, in(self), {})));
      steps.push_back(makeStep(StepOp::Copy, -1, -1, in(self), out(self)));
      allGatherTail(v, steps);
      break;
    case Collective::Broadcast:
    case Collective::Reduce: {
      if (n == 1) {
        steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0), collective == Collective::Reduce));
        break;
      }
      if (collective == Collective::Broadcast) {
        // Chain root -> ring successor -> ... ; the rank before the root ends it.
        if (self == root) {
          // The slice leaves first: the root's own copy then overlaps the
          // successor's receive instead of delaying it.
          steps.push_back(publishing(makeStep(StepOp::Send, -1, next, in(0), {})));
          steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0)));
        } else if (next == root) {
          steps.push_back(makeStep(StepOp::Recv, prev, -1, {}, out(0)));
        } else {
          steps.push_back(publishing(makeStep(StepOp::RecvSend, prev, next, {}, out(0))));
        }
      } else {
        // Chain starting after the root and ending at it.
        if (self == root)
          steps.push_back(makeStep(StepOp::RecvReduceCopy, prev, -1, in(0), out(0), true));
        else if (prev == root)
          steps.push_back(publishing(makeStep(StepOp::Send, -1, next, in(0), {})));
        else
          steps.push_back(makeStep(StepOp::RecvReduceSend, prev, next, in(0), {}));
      }
      // The call's description around the ring (see withRingTokens).
      withRingTokens(next, prev, steps);
      break;
    }
    default: break;  // the ring builds none of the others (see the registry)
  }
  return steps;
}

}  // namespace

Plan buildRingPlan(const PlanRequest& request) {
  Collective collective = request.collective;
  int nranks = request.nranks;
  bool blocked = collective == Collective::AllReduce || collective == Collective::ReduceScatter ||
                 collective == Collective::AllGather;
  // One rank: a single block, which is its own either way.
  Plan plan = newPlan(request, Algorithm::Ring, blocked && nranks > 1 ? nranks : 1);
  RingOrder identity;
  if (request.rings.empty()) identity = identityRing(nranks);
  for (int channel = 0; channel < request.nChannels; ++channel) {
    const RingOrder& ring =
        request.rings.empty() ? identity : request.rings[static_cast<size_t>(channel) % request.rings.size()];
    int position = 0;
    while (ring[position] != request.rank) ++position;
    plan.addChannel(rankSteps(collective, RingView{ring, position, nranks}, request.root));
  }
  noteScratch(plan);
  return plan;
}

bool ringCost(const CostQuery& query, CostTerms* terms) {
  *terms = cost::ring(query);
  return true;
}

}  // namespace weft
