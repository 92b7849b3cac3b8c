// Direct exchanges: all-to-all, gather, scatter and broadcast, every block
// sent straight from the rank that has it to the rank that wants it. One
// hop; each rank sends and receives what it must and nothing more
// (all-to-all: (n-1)/n of its buffer each way; gather and scatter: the root
// moves (n-1) blocks, every other rank one; broadcast: the root lends its
// buffer to n-1 peers, which costs it n-1 copies through slots but none
// where the peers read it by address, as processes of one node do with
// cross-memory attach).
//
// All-to-all: block j of rank r's input becomes block r of rank j's output.
// Per slot-sized iteration every rank sends its n-1 blocks first (peers in
// the order r+1, r+2, ...) and then receives n-1, so a receive never waits
// on a send that waits on it, with FIFOs of any depth. Sends publish their
// block by address only out of place (kMayPublishOutOfPlace): in place, a
// rank overwrites block j of its buffer with rank j's block while rank j
// might still be reading it.
//
// Gather, scatter and broadcast pass the ring tokens of broadcast and
// reduce first (ring.cc): every rank tells its successor the call's
// description, so ranks that disagree about the root fail in the call
// instead of waiting.
#include <algorithm>

#include "algorithms/plan_builder.h"
#include "algorithms/registry.h"

namespace weft {

using namespace plan_builder;

namespace {

void allToAllSteps(int rank, int n, std::vector<Step>& steps) {
  steps.push_back(makeStep(StepOp::Copy, -1, -1, in(rank), out(rank)));
  for (int k = 1; k < n; ++k) {
    int peer = (rank + k) % n;
    steps.push_back(publishingOutOfPlace(makeStep(StepOp::Send, -1, peer, in(peer), {})));
  }
  for (int k = 1; k < n; ++k) {
    int peer = (rank - k + n) % n;
    // Rank peer's block for this rank: it moves block `rank` of peer's input.
    steps.push_back(makeStep(StepOp::Recv, peer, -1, {}, out(peer), false, rank));
  }
}

// Gather: the root receives every rank's block into its place; scatter: the
// root sends every rank its block; broadcast: a scatter whose every block is
// the one block (the root lends its input to every peer at once). The call's
// description goes round the ring as in every rooted plan (withRingTokens).
void rootedSteps(Collective collective, int rank, int n, int root, std::vector<Step>& steps) {
  int next = (rank + 1) % n, prev = (rank - 1 + n) % n;
  bool gather = collective == Collective::Gather;
  auto block = [&](int r) { return collective == Collective::Broadcast ? 0 : r; };
  if (rank == root) {
    // A scatter's blocks leave before the root copies its own.
    if (gather) steps.push_back(makeStep(StepOp::Copy, -1, -1, in(root), out(root)));
    for (int k = 1; k < n; ++k) {
      int peer = (root + k) % n;
      if (gather)
        steps.push_back(makeStep(StepOp::Recv, peer, -1, {}, out(peer)));
      else
        steps.push_back(publishing(makeStep(StepOp::Send, -1, peer, in(block(peer)), {})));
    }
    if (!gather) steps.push_back(makeStep(StepOp::Copy, -1, -1, in(block(root)), out(block(root))));
  } else if (gather) {
    steps.push_back(publishing(makeStep(StepOp::Send, -1, root, in(rank), {})));
  } else {
    steps.push_back(makeStep(StepOp::Recv, root, -1, {}, out(block(rank))));
  }
  withRingTokens(next, prev, steps);
}

}  // namespace

Plan buildDirectPlan(const PlanRequest& request) {
  int n = request.nranks, rank = request.rank;
  Plan plan = newPlan(request, Algorithm::Direct, request.collective == Collective::Broadcast ? 1 : n);
  std::vector<Step> steps;
  if (n == 1)
    steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0)));
  else if (request.collective == Collective::AllToAll)
    allToAllSteps(rank, n, steps);
  else
    rootedSteps(request.collective, rank, n, request.root, steps);
  for (int c = 0; c < request.nChannels; ++c) plan.addChannel(steps);
  noteScratch(plan);
  plan.singleCopyAcrossProcesses = request.collective != Collective::Gather;
  return plan;
}

// One hop. All-to-all: a rank copies (n-1) blocks into slots and (n-1) out
// (query.bytes is one rank's whole buffer, n blocks). Gather and scatter:
// the root moves n-1 blocks, and its time is the call's.
bool directCost(const CostQuery& query, CostTerms* terms) {
  double n = query.shape.nranks, l = query.shape.ranksPerNode, S = static_cast<double>(query.bytes);
  double moved = (n - 1) / n * S;
  CostTerms& t = *terms;
  (query.shape.nNodes > 1 ? t.netHops : t.hops) = n > 1 ? 1 : 0;
  if (query.collective == Collective::AllToAll) {
    t.copyBytes = 2 * moved + S / n;
    t.netBytes = l * (n - l) / n * S;
    t.pieces = cost::pieces(query, 2 * (n - 1), S / n);
  } else if (query.collective == Collective::Broadcast) {
    t.steps = std::max(0.0, n - 2);  // the root's sends after its first, one after another
    if (cost::copiesByAddress(query)) {
      // Every peer reads the root's input at once, in slices of the
      // transport's (the model's slot: a lower bound on the pieces); each
      // copies S, and the root its own copy alongside.
      t.copyBytes = S;
      t.pieces = cost::pieces(query, 1, S);
    } else {
      // The root copies S into n-1 slots (and its own copy).
      t.copyBytes = n * S;
      t.pieces = cost::pieces(query, n - 1, S);
    }
    t.netBytes = (n - l) * S;
  } else {  // gather, scatter: the root
    t.copyBytes = moved + S / n;
    t.netBytes = (n - l) / n * S;
    t.pieces = cost::pieces(query, n - 1, S / n);
  }
  if (cost::spansSites(query) && n > 1) {  // the hop waits on the far sites' blocks
    double far = n - n / query.shape.nSites;
    t.netHops = t.hops = 0;
    t.wanHops = 1;
    t.wanBytes = (query.collective == Collective::AllToAll ? l : 1) * far / n * S;
  }
  return true;
}

Plan buildPointToPointPlan(Collective direction, int nranks, int rank, int peer) {
  PlanRequest request;
  request.collective = direction;
  request.nranks = nranks;
  request.rank = rank;
  Plan plan = newPlan(request, Algorithm::Direct, 1);
  plan.emptyMessages = true;
  plan.concurrent = true;
  // A send's buffer is the caller's until the call completes, and the call
  // completes only when the receiver has read it: it may go by address.
  if (direction == Collective::Send)
    plan.addChannel({publishing(makeStep(StepOp::Send, -1, peer, in(0), {}))});
  else
    plan.addChannel({makeStep(StepOp::Recv, peer, -1, {}, out(0))});
  return plan;
}

}  // namespace weft
