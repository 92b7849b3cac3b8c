// Hierarchical all-reduce for several nodes of L ranks each (M nodes):
//   1. reduce-scatter inside each node around the node's ring: local rank i
//      ends with super-block i (of L) reduced over its node;
//   2. all-reduce of super-block i across the nodes, between the ranks that
//      hold it (one ring per local index: rails), cut into M blocks;
//   3. all-gather inside each node.
// The buffer is n = L*M blocks; super-block i is blocks i*M .. i*M+M-1.
// Bytes that cross the network: each rank sends 2(M-1)/M of S/L, so a node
// sends 2(M-1)/M S in all, the minimum; the flat ring over the same ranks
// carries 2(n-1)/n S across each node boundary (2 nodes of 2 ranks: 1.5 S
// against S). Latency: 2(L-1) + 2(M-1) hops. Nodes of different sizes, or
// one node, or one rank per node get the flat ring (every rank decides
// alike from the same node table).
#include <algorithm>

#include "algorithms/plan_builder.h"
#include "algorithms/registry.h"

namespace weft {

using namespace plan_builder;

namespace {

// Ring reduce-scatter over members (in ring order) where member g ends with
// block blockOf[g]: at step s the member at position q passes block
// blockOf[q-1-s] on. One block per member and step, as the flat ring: with
// several blocks per step, every member would fill its 2-slot FIFO with its
// first sends and wait on its successor doing the same. fromOutput: the
// operands are an earlier phase's partial results in the output; final:
// this is the last reduction (weftAvg divides).
void ringReduceScatter(const std::vector<int>& members, int q, const std::vector<int>& blockOf, bool fromOutput,
                       bool final, std::vector<Step>& steps) {
  int k = static_cast<int>(members.size());
  auto src = [&](int b) { return fromOutput ? out(b) : in(b); };
  auto block = [&](int offset) { return blockOf[static_cast<size_t>(((q + offset) % k + k) % k)]; };
  if (k == 1) {
    if (!fromOutput) steps.push_back(makeStep(StepOp::Copy, -1, -1, in(block(0)), out(block(0)), final));
    return;
  }
  int next = members[static_cast<size_t>((q + 1) % k)], prev = members[static_cast<size_t>((q - 1 + k) % k)];
  steps.push_back(makeStep(StepOp::Send, -1, next, src(block(-1)), {}));
  for (int s = 1; s <= k - 2; ++s)
    steps.push_back(makeStep(StepOp::RecvReduceSend, prev, next, src(block(-1 - s)), {}));
  steps.push_back(makeStep(StepOp::RecvReduceCopy, prev, -1, src(block(0)), out(block(0)), final));
}

// Ring all-gather of the blocks, each member's own already in the output.
void ringAllGather(const std::vector<int>& members, int q, const std::vector<int>& blockOf, std::vector<Step>& steps) {
  int k = static_cast<int>(members.size());
  if (k == 1) return;
  auto block = [&](int offset) { return blockOf[static_cast<size_t>(((q + offset) % k + k) % k)]; };
  int next = members[static_cast<size_t>((q + 1) % k)], prev = members[static_cast<size_t>((q - 1 + k) % k)];
  steps.push_back(makeStep(StepOp::Send, -1, next, out(block(0)), {}));
  for (int s = 1; s <= k - 2; ++s) steps.push_back(makeStep(StepOp::RecvSend, prev, next, {}, out(block(-s))));
  steps.push_back(makeStep(StepOp::Recv, prev, -1, {}, out(block(-(k - 1)))));
}

}  // namespace

Plan buildHierarchicalPlan(const PlanRequest& request) {
  int n = request.nranks;
  RingOrder ring = request.rings.empty() ? identityRing(n) : request.rings.front();
  // Nodes in the order the ring enters them, each node's ranks in ring order.
  std::vector<int> nodeOf = request.nodeOfRank;
  if (nodeOf.size() != static_cast<size_t>(n)) nodeOf.assign(static_cast<size_t>(n), 0);
  std::vector<int> nodeIds;
  std::vector<std::vector<int>> nodes;
  for (int r : ring) {
    auto it = std::find(nodeIds.begin(), nodeIds.end(), nodeOf[static_cast<size_t>(r)]);
    if (it == nodeIds.end()) {
      nodeIds.push_back(nodeOf[static_cast<size_t>(r)]);
      nodes.emplace_back();
      it = nodeIds.end() - 1;
    }
    nodes[static_cast<size_t>(it - nodeIds.begin())].push_back(r);
  }
  int m = static_cast<int>(nodes.size()), l = static_cast<int>(nodes.front().size());
  bool even = std::all_of(nodes.begin(), nodes.end(),
                          [&](const std::vector<int>& ranks) { return static_cast<int>(ranks.size()) == l; });
  if (m == 1 || l == 1 || !even) {
    Plan flat = buildRingPlan(request);
    flat.algorithm = Algorithm::Hierarchical;
    return flat;
  }
  Plan plan = newPlan(request, Algorithm::Hierarchical, n);
  // Where this rank is: node `node`, local index `local`.
  int node = 0, local = 0;
  for (int j = 0; j < m; ++j) {
    auto at = std::find(nodes[j].begin(), nodes[j].end(), request.rank);
    if (at != nodes[j].end()) node = j, local = static_cast<int>(at - nodes[j].begin());
  }
  // Phase 1 and 3 run as M rings inside the node, ring j over block j of
  // every super-block; phase 2 is one ring across the nodes over the M
  // blocks of this rank's super-block.
  auto superBlockRing = [&](int j) {
    std::vector<int> blockOf(static_cast<size_t>(l));
    for (int i = 0; i < l; ++i) blockOf[static_cast<size_t>(i)] = i * m + j;
    return blockOf;
  };
  std::vector<int> railBlocks(static_cast<size_t>(m)), railMembers;
  for (int j = 0; j < m; ++j) {
    railBlocks[static_cast<size_t>(j)] = local * m + j;
    railMembers.push_back(nodes[static_cast<size_t>(j)][static_cast<size_t>(local)]);
  }
  const std::vector<int>& nodeMembers = nodes[static_cast<size_t>(node)];
  std::vector<Step> steps;
  for (int j = 0; j < m; ++j) ringReduceScatter(nodeMembers, local, superBlockRing(j), false, false, steps);
  ringReduceScatter(railMembers, node, railBlocks, true, true, steps);
  ringAllGather(railMembers, node, railBlocks, steps);
  for (int j = 0; j < m; ++j) ringAllGather(nodeMembers, local, superBlockRing(j), steps);
  for (int c = 0; c < request.nChannels; ++c) plan.addChannel(steps);
  noteScratch(plan);
  return plan;
}

// Reduce-scatter and all-gather inside the node (l ranks, 2(l-1) hops, M
// rings of S/n blocks each), all-reduce across the M nodes on S/l per rank
// (2(M-1) network hops). A node sends 2(M-1)/M S each way over the network;
// its ranks reduce and copy about what the flat ring's do. Nodes of
// different sizes, one node or one rank per node: the flat ring's plan, so
// the ring's entry stands for it.
bool hierarchicalCost(const CostQuery& query, CostTerms* terms) {
  const CostShape& shape = query.shape;
  if (shape.nNodes <= 1 || shape.ranksPerNode <= 1 || !shape.uniformNodes) return false;
  double n = shape.nranks, m = shape.nNodes, l = shape.ranksPerNode, S = static_cast<double>(query.bytes);
  CostTerms& t = *terms;
  t.hops = 2 * (l - 1);
  t.netHops = 2 * (m - 1);
  t.reduceBytes = (l - 1) / l * S + (m - 1) / m * S / l;
  t.copyBytes = S / l + (m - 1) / m * S / l + (l - 1) / l * S;
  t.chained = true;
  t.netBytes = 2 * (m - 1) / m * S;
  t.pieces = cost::pieces(query, 2 * m * (l - 1) + 2 * (m - 1), S / n);
  return true;
}

}  // namespace weft
