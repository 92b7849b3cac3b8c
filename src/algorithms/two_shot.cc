// Two-shot: reduce-scatter then all-gather, each straight between every
// pair. Every rank sends block j of its input to rank j, which reduces its
// block in rank order and sends the result to every rank. Same bytes per
// rank as the ring, but two hops of latency instead of 2(n-1), and no chain
// of ranks waiting on each other: what ranks sharing one node's memory (and,
// when ranks outnumber cores, one core) want. All-reduce, reduce-scatter,
// all-gather.
//
// Per rank and slot-sized iteration: n-1 sends of input blocks, n-1
// receives reduced in rank order into the rank's own block, then n-1 sends
// of that block and n-1 receives of the others. Every send may go by
// address: input blocks are only read, and a rank's reduced block is
// written before it is sent and never again.
#include <algorithm>

#include "algorithms/plan_builder.h"
#include "algorithms/registry.h"

namespace weft {

using namespace plan_builder;

Plan buildTwoShotPlan(const PlanRequest& request) {
  Collective collective = request.collective;
  int nranks = request.nranks, rank = request.rank;
  bool reduceScatter = collective == Collective::AllReduce || collective == Collective::ReduceScatter;
  bool allGather = collective == Collective::AllReduce || collective == Collective::AllGather;
  Plan plan = newPlan(request, Algorithm::TwoShot, nranks);
  std::vector<Step> steps;
  if (nranks == 1) {
    steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0), reduceScatter));
  } else {
    if (reduceScatter) {
      for (int k = 1; k < nranks; ++k) {
        int peer = (rank + k) % nranks;
        steps.push_back(publishing(makeStep(StepOp::Send, -1, peer, in(peer), {})));
      }
      appendRankOrderReduction(rank, nranks, rank, steps);
    } else {
      steps.push_back(makeStep(StepOp::Copy, -1, -1, in(rank), out(rank)));
    }
    if (allGather) {
      for (int k = 1; k < nranks; ++k)
        steps.push_back(publishing(makeStep(StepOp::Send, -1, (rank + k) % nranks, out(rank), {})));
      for (int k = 1; k < nranks; ++k) {
        int peer = (rank - k + nranks) % nranks;
        steps.push_back(makeStep(StepOp::Recv, peer, -1, {}, out(peer)));
      }
    }
  }
  for (int c = 0; c < request.nChannels; ++c) plan.addChannel(steps);
  noteScratch(plan);
  return plan;
}

// Two hops for an all-reduce (one for either half alone), no chain: a
// rank takes whichever peer's slot is ready. Reduce-scatter copies n-1
// input blocks into slots and reduces the n-1 blocks it receives into its
// own (in scratch, but every reduction counts); all-gather copies its block
// into n-1 slots and n-1 blocks out into the output.
bool twoShotCost(const CostQuery& query, CostTerms* terms) {
  double n = query.shape.nranks, l = query.shape.ranksPerNode, S = static_cast<double>(query.bytes);
  double moved = (n - 1) / n * S;  // each half moves (n-1) of n blocks per rank
  bool reduces = query.collective != Collective::AllGather;
  bool gathers = query.collective != Collective::ReduceScatter;
  double halves = (reduces ? 1 : 0) + (gathers ? 1 : 0);
  CostTerms& t = *terms;
  (query.shape.nNodes > 1 ? t.netHops : t.hops) = n > 1 ? halves : 0;
  t.copyBytes = (reduces ? moved : 0) + (gathers ? moved + S / n : 0);
  t.reduceBytes = reduces ? moved : 0;
  t.netBytes = halves * l * (n - l) / n * S;
  t.pieces = cost::pieces(query, 2 * halves * (n - 1), S / n);
  if (cost::spansSites(query) && n > 1) {  // each half waits on the far sites' ranks
    t.netHops = t.hops = 0;
    t.wanHops = halves;
    t.wanBytes = halves * l * (n - n / query.shape.nSites) / n * S;
  }
  return true;
}

}  // namespace weft
