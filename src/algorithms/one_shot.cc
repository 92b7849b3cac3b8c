// One-shot all-reduce: each rank sends its whole input to every peer and
// reduces all of them in rank order, so every rank computes the same bits.
// One hop of latency and (n-1) S bytes sent per rank: for small messages,
// where the ring's 2(n-1) hops cost more than the extra traffic.
//
// Nothing is sent by address: a rank writes its in-place output while peers
// may still be reading its input.
#include <algorithm>

#include "algorithms/plan_builder.h"
#include "algorithms/registry.h"

namespace weft {

using namespace plan_builder;

Plan buildOneShotPlan(const PlanRequest& request) {
  int nranks = request.nranks, rank = request.rank;
  Plan plan = newPlan(request, Algorithm::OneShot, 1);
  std::vector<Step> steps;
  for (int k = 1; k < nranks; ++k) steps.push_back(makeStep(StepOp::Send, -1, (rank + k) % nranks, in(0), {}));
  if (nranks == 1)
    steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0), true));
  else
    appendRankOrderReduction(rank, nranks, 0, steps);
  for (int c = 0; c < request.nChannels; ++c) plan.addChannel(steps);
  noteScratch(plan);
  return plan;
}

// One hop; the input copied into n-1 slots and n-1 reductions of the whole
// buffer; every rank of a node sends S to every rank of the others.
bool oneShotCost(const CostQuery& query, CostTerms* terms) {
  double n = query.shape.nranks, l = query.shape.ranksPerNode, S = static_cast<double>(query.bytes);
  CostTerms& t = *terms;
  (query.shape.nNodes > 1 ? t.netHops : t.hops) = n > 1 ? 1 : 0;
  t.copyBytes = n > 1 ? (n - 1) * S : S;
  t.reduceBytes = (n - 1) * S;
  t.netBytes = l * (n - l) * S;
  t.pieces = cost::pieces(query, 2 * (n - 1), S);
  if (cost::spansSites(query) && n > 1) {  // the hop waits on the far sites' ranks
    t.netHops = t.hops = 0;
    t.wanHops = 1;
    t.wanBytes = l * (n - n / query.shape.nSites) * S;
  }
  return true;
}

}  // namespace weft
