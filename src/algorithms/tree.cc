// Double binary tree all-reduce (NCCL's construction, topology/search.h):
// two binary trees over the ranks in ring order, in which a rank that is an
// inner node of one is a leaf of the other. The buffer is cut into two
// blocks; tree t reduces block t up to its root and broadcasts the result
// back down. Latency is about 2 log2(n) hops instead of the ring's 2(n-1),
// which is what small messages on many ranks (many nodes) want; for large
// ones each rank sends and receives about the buffer once per tree it is
// inner in, and the ring's bandwidth is hard to beat.
//
// Per rank and tree: a leaf sends its block to its parent and receives the
// result; an inner node reduces its children's blocks into its own in one
// fan-in step (both children awaited together), sends the partial up, then
// passes the result down to each child. Children are reduced in the
// order topology/search.h lists them, so the bits are the same on every
// rank for one tree shape.
//
// A channel runs in four passes (StepWalk), each over every slice: up
// tree 0, up tree 1, down tree 0, down tree 1. In a pass a rank waits only
// on one tree and one direction, so its slices follow one another a step
// apart, and a call takes about 3 depth hops (tree 1's up starting as tree
// 0's ends on each rank) plus a step per slice and pass. Walking each
// slice up and down before the next costs 4 depth hops per slice; two
// passes (both trees up, then down) chain the trees through the ranks they
// share, about 2 depth hops per slice (weft-sim shows both). Any FIFO
// depth is enough: a rank waits only on ranks in its pass or an earlier
// one, and within a pass on ranks at an earlier slice, or at the same one
// deeper in the tree (up) or nearer the root (down).
// A block shorter than the rank count leaves the second block empty, and
// then only tree 0 moves anything (8 bytes: one tree, 2 log2 n hops).
// On two channels or more, channel c instead carries its share of the whole
// buffer up and down tree c % 2 alone, in two passes: a rank's steps in one
// tree never wait behind its steps in the other, so a call takes about 2
// depth hops at any size (weft-sim, 31 ranks, 10 us links: 80 us against
// 120 on one channel).
// Nothing goes by address: a leaf's in-place output is written while its
// parent may still read its input.
//
// Broadcast and reduce (rootedTreeSteps below) use one tree rooted at the
// root: the same down and up halves over the whole buffer.
#include <algorithm>

#include "algorithms/plan_builder.h"
#include "algorithms/registry.h"
#include "topology/search.h"

namespace weft {

using namespace plan_builder;

namespace {

// Up: reduce the children into this rank's block and pass it to the parent
// (the root writes the result; final: the reduction's last write). Two
// children are one fan-in step: both slots awaited together, reduced in the
// order listed.
void upSteps(int parent, const std::vector<int>& children, int block, bool final, std::vector<Step>& steps) {
  if (children.empty()) {
    if (parent >= 0)
      steps.push_back(makeStep(StepOp::Send, -1, parent, in(block), {}, false, block));
    else
      steps.push_back(makeStep(StepOp::Copy, -1, -1, in(block), out(block), final, block));
    return;
  }
  Step step = parent >= 0 ? makeStep(StepOp::RecvReduceSend, children[0], parent, in(block), {}, false, block)
                          : makeStep(StepOp::RecvReduceCopy, children[0], -1, in(block), out(block), final, block);
  if (children.size() > 1) step = fanningIn(step, children[1]);
  steps.push_back(step);
}

// Down: the result from the parent (the root has it in its output already),
// on to each child. `publish`: the output block stays put after the call's
// down pass (a broadcast's), so its sends may publish it by address.
void downSteps(int parent, const std::vector<int>& children, int block, bool publish, std::vector<Step>& steps) {
  auto sending = [publish](Step step) { return publish ? publishing(step) : step; };
  size_t first = 0;
  if (parent >= 0) {
    if (children.empty()) {
      steps.push_back(makeStep(StepOp::Recv, parent, -1, {}, out(block), false, block));
      return;
    }
    steps.push_back(sending(makeStep(StepOp::RecvSend, parent, children[0], {}, out(block), false, block)));
    first = 1;
  }
  for (size_t i = first; i < children.size(); ++i)
    steps.push_back(sending(makeStep(StepOp::Send, -1, children[i], out(block), {}, false, block)));
}

// Broadcast and reduce: one binary tree rooted at the root, over ring
// positions counted from the root's (position p's children are 2p+1 and
// 2p+2), so a call takes floor(log2 n) hops instead of the chain's n-1.
// The call's description goes round the ring as in every rooted plan
// (withRingTokens): a rank that disagrees about the root is found in the
// call (the executor takes a last-slice token early whenever the channel
// would otherwise wait).
void rootedTreeSteps(const PlanRequest& request, const RingOrder& ring, const std::vector<int>& positionOf,
                     std::vector<Step>& steps) {
  int n = request.nranks, self = positionOf[static_cast<size_t>(request.rank)];
  int rootAt = positionOf[static_cast<size_t>(request.root)];
  int p = (self - rootAt + n) % n;
  auto rankAt = [&](int q) { return ring[static_cast<size_t>((q + rootAt) % n)]; };
  int parent = p == 0 ? -1 : rankAt((p - 1) / 2);
  std::vector<int> children;
  for (int c : {2 * p + 1, 2 * p + 2})
    if (c < n) children.push_back(rankAt(c));
  int next = ring[static_cast<size_t>((self + 1) % n)], prev = ring[static_cast<size_t>((self - 1 + n) % n)];
  bool broadcast = request.collective == Collective::Broadcast;
  if (broadcast) {
    if (parent < 0) {
      // The slice leaves first; the root's own copy overlaps the receives.
      for (int child : children) steps.push_back(publishing(makeStep(StepOp::Send, -1, child, in(0), {})));
      steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0)));
    } else {
      downSteps(parent, children, 0, true, steps);
    }
  } else {
    upSteps(parent, children, 0, true, steps);
  }
  withRingTokens(next, prev, steps);
}

}  // namespace

// A slice crosses the tree whole at every hop (store and forward), so the
// first one reaches the last rank after about 3 depth slice transfers
// (depth for broadcast and reduce). Slices of a slot over half the depth
// keep that fill at about 6 slots' transfer time at any depth: 1 up to 7
// ranks, 7 at 16384 (weft-sim, 2048 ranks of a dgx-h100-pod, 16 MiB:
// 8.8 ms in whole slots, 3.1 ms in quarters, 1.7 ms in sixteenths).
static int treeSlicesPerSlot(int nranks) { return std::clamp(cost::treeDepth(nranks) / 2, 1, 16); }

// Every rank's plan of a call builds the same pair of trees: the last pair
// is kept (one per thread), so that building the plans of n ranks (the
// verifier, the simulator) builds it once instead of n times.
static const DoubleTree& doubleTreeOf(int nranks) {
  thread_local int cachedRanks = -1;
  thread_local DoubleTree cached;
  if (cachedRanks != nranks) {
    cached = buildDoubleTree(nranks);
    cachedRanks = nranks;
  }
  return cached;
}

Plan buildTreePlan(const PlanRequest& request) {
  int nranks = request.nranks;
  bool rooted = collectiveHasRoot(request.collective);
  // All-reduce on two channels or more: channel c carries its share of the
  // buffer up and down tree c % 2 alone, as NCCL runs the two trees, so the
  // trees never wait on each other (2 depth hops). On one channel the
  // buffer's two halves take one tree each, in the four passes below.
  bool treePerChannel = nranks > 1 && !rooted && request.nChannels >= 2;
  Plan plan = newPlan(request, Algorithm::Tree, nranks > 1 && !rooted && !treePerChannel ? 2 : 1);
  std::vector<Step> steps;
  if (nranks == 1) {
    steps.push_back(makeStep(StepOp::Copy, -1, -1, in(0), out(0), request.collective != Collective::Broadcast));
  } else {
    // Tree positions are places in the ring (the topology's order).
    RingOrder ring = request.rings.empty() ? identityRing(nranks) : request.rings.front();
    std::vector<int> positionOf(static_cast<size_t>(nranks));
    for (int p = 0; p < nranks; ++p) positionOf[static_cast<size_t>(ring[p])] = p;
    if (collectiveHasRoot(request.collective)) {
      rootedTreeSteps(request, ring, positionOf, steps);
    } else {
      const DoubleTree& trees = doubleTreeOf(nranks);
      int self = positionOf[static_cast<size_t>(request.rank)];
      // This rank's steps in each tree: on block t (one channel), or on
      // the whole buffer (a tree per channel).
      std::vector<Step> ups[2], downs[2];
      for (int t = 0; t < 2; ++t) {
        int parent = trees.parent[t][self];
        std::vector<int> children;
        for (int child : trees.children[t][self]) children.push_back(ring[child]);
        int up = parent < 0 ? -1 : ring[parent];
        int block = treePerChannel ? 0 : t;
        upSteps(up, children, block, true, ups[t]);
        downSteps(up, children, block, false, downs[t]);
      }
      if (treePerChannel) {
        // Channel c: up tree c % 2, then down it, a pass each.
        for (int c = 0; c < request.nChannels; ++c) {
          std::vector<Step> channel = ups[c % 2], down = downs[c % 2];
          if (!down.empty()) down.front() = startingPass(down.front());
          channel.insert(channel.end(), down.begin(), down.end());
          plan.addChannel(channel);
        }
      } else {
        // Four passes, each over every slice: up tree 0, up tree 1, down
        // tree 0, down tree 1.
        for (std::vector<Step>* pass : {&ups[0], &ups[1], &downs[0], &downs[1]}) {
          if (pass->empty()) continue;
          if (!steps.empty()) pass->front() = startingPass(pass->front());
          steps.insert(steps.end(), pass->begin(), pass->end());
        }
      }
    }
  }
  plan.slicesPerSlot = treeSlicesPerSlot(nranks);
  if (!treePerChannel)
    for (int c = 0; c < request.nChannels; ++c) plan.addChannel(steps);
  noteScratch(plan);
  return plan;
}

// Across sites (stretches of the ring order the trees are built on), a
// path from a leaf to the root crosses about log2(sites) site links, each
// `passes` times; a rank whose tree edge crosses one sends what it would
// over the network.
static void treeAcrossSites(const CostQuery& query, double passes, CostTerms* t) {
  if (!cost::spansSites(query)) return;
  double crossings = std::max(1, cost::treeDepth(query.shape.nSites));
  double& local = query.shape.nNodes > 1 ? t->netHops : t->hops;
  t->wanHops = std::min(local, passes * crossings);
  local -= t->wanHops;
  t->wanBytes = t->netBytes;
}

// All-reduce: each half of the buffer goes up one tree and down again, a
// pass each: 3 depth hops on one channel (2 when the second half is empty:
// fewer elements than ranks, counted as floats), 2 on two channels or more
// (a tree per channel), later slots following a hop apart
// (pieces). A rank reduces about the buffer once (two children's halves,
// as the inner node of one tree) and copies it about one and a half times;
// over the network a node sends and receives about 2 S.
// Broadcast and reduce: depth hops; an inner node passes every slot to (or
// reduces it from) two children, so it moves twice the buffer where the
// chain's ranks move it once.
bool treeCost(const CostQuery& query, CostTerms* terms) {
  int n = query.shape.nranks;
  double S = static_cast<double>(query.bytes), depth = cost::treeDepth(n);
  CostTerms& t = *terms;
  t.chained = true;
  bool network = query.shape.nNodes > 1;
  CostQuery sliced = query;  // pieces are slices, smaller than slots in deep trees
  sliced.shape.slotBytes = std::max<size_t>(64, query.shape.slotBytes / static_cast<size_t>(treeSlicesPerSlot(n)));
  if (query.collective == Collective::Broadcast || query.collective == Collective::Reduce) {
    (network ? t.netHops : t.hops) = depth;
    if (query.collective == Collective::Broadcast)
      t.copyBytes = 2 * S;
    else
      t.reduceBytes = 2 * S;
    t.netBytes = 2 * S;
    t.pieces = cost::pieces(sliced, 2, S);
    treeAcrossSites(query, 1, &t);
    return true;
  }
  bool oneTree = query.bytes / 2 < static_cast<size_t>(n) * sizeof(float);
  // On two channels or more each tree has its own (buildTreePlan).
  double passes = oneTree || query.channels >= 2 ? 2 : 3;
  (network ? t.netHops : t.hops) = passes * depth;
  t.reduceBytes = S;
  t.copyBytes = 1.5 * S;
  t.netBytes = 2 * S;
  t.pieces = cost::pieces(sliced, 6, S / 2);
  treeAcrossSites(query, passes, &t);
  return true;
}

}  // namespace weft
