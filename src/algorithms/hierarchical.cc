// Hierarchical plans for several nodes of L ranks each (M nodes), so that
// bytes cross the network the fewest times; the ranks with one local index
// on every node form a rail (a ring or chain across the nodes).
//
// All-reduce:
//   1. reduce-scatter inside each node around the node's ring: local rank i
//      ends with super-block i (of L) reduced over its node;
//   2. all-reduce of super-block i across the nodes, between the ranks that
//      hold it (one ring per local index: rails), cut into M blocks;
//   3. all-gather inside each node.
// The buffer is n = L*M blocks; super-block i is blocks i*M .. i*M+M-1.
// Bytes that cross the network: each rank sends 2(M-1)/M of S/L, so a node
// sends 2(M-1)/M S in all, the minimum; the flat ring over the same ranks
// carries 2(n-1)/n S across each node boundary (2 nodes of 2 ranks: 1.5 S
// against S). Latency: 2(L-1) + 2(M-1) hops.
//
// Reduce-scatter (block r is rank r's): the rail of local index i owns the
// blocks of its members. Inside the node, one ring per rail position reduces
// that node's blocks over the node; its last receive is fused into the rail
// ring's step (a fan-in: the node partial and the rail partial in one step),
// so no partial needs a home the output does not have. A node sends
// (M-1)/M S over the network (the flat ring: (n-1)/n S per boundary).
// All-gather: the rail ring first (each rank's block to its rail), then one
// ring per rail position inside each node.
// Broadcast: the buffer in L blocks; the root hands block i to local rank i
// of its node, which passes it down rail i (a chain across the nodes); then
// every node all-gathers the L blocks. Each node receives S once over the
// network, spread over its L ranks (their NICs) instead of one.
// Reduce: the mirror: a reduce-scatter of the L blocks inside each node fused
// into chains down the rails that end on the root's node, whose ranks hand
// their reduced block to the root.
//
// Nodes of different sizes, one node, or one rank per node get the flat
// ring (every rank decides alike from the same node table).
//
// Sites (WEFT_SITEID, request.siteOfRank): where ranks sit in several
// sites joined by a long link, the groups above are the sites instead of
// the nodes: the reduce-scatter and all-gather run inside each site (over
// its nodes' network where it has several), the rails across the sites, so
// a site sends 2(M-1)/M S over the site link, where the flat ring carries
// 2(n-1)/n S across each site boundary.
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

// The reduce-scatter ring's steps but its last (returned for the caller to
// fuse: the receive that completes block blockOf[q] over the members).
Step openRingReduceScatter(const std::vector<int>& members, int q, const std::vector<int>& blockOf,
                           std::vector<Step>& steps) {
  int k = static_cast<int>(members.size());
  auto block = [&](int offset) { return blockOf[static_cast<size_t>(((q + offset) % k + k) % k)]; };
  int next = members[static_cast<size_t>((q + 1) % k)], prev = members[static_cast<size_t>((q - 1 + k) % k)];
  steps.push_back(makeStep(StepOp::Send, -1, next, in(block(-1)), {}));
  for (int s = 1; s <= k - 2; ++s) steps.push_back(makeStep(StepOp::RecvReduceSend, prev, next, in(block(-1 - s)), {}));
  return makeStep(StepOp::RecvReduceCopy, prev, -1, in(block(0)), out(block(0)), true);
}

// Where the ranks are: nodes in the order the ring enters them, each node's
// ranks in ring order; this rank is local index `local` of node `node`.
struct Layout {
  std::vector<std::vector<int>> nodes;
  int m = 1, l = 1, node = 0, local = 0;
  bool flat = true;  // one node, one rank per node, or nodes of unequal size

  int at(int node, int local) const {
    return nodes[static_cast<size_t>((node % m + m) % m)][static_cast<size_t>((local % l + l) % l)];
  }
  std::vector<int> rail() const {
    std::vector<int> members(static_cast<size_t>(m));
    for (int j = 0; j < m; ++j) members[static_cast<size_t>(j)] = at(j, local);
    return members;
  }
  // Locate rank r: its node and local index.
  void find(int r, int* nodeOut, int* localOut) const {
    for (int j = 0; j < m; ++j) {
      auto it = std::find(nodes[j].begin(), nodes[j].end(), r);
      if (it != nodes[j].end()) *nodeOut = j, *localOut = static_cast<int>(it - nodes[j].begin());
    }
  }
};

Layout layoutOf(const PlanRequest& request) {
  int n = request.nranks;
  RingOrder ring = request.rings.empty() ? identityRing(n) : request.rings.front();
  // Several sites: the groups are sites, and the rails cross the site link.
  bool sites = request.siteOfRank.size() == static_cast<size_t>(n) &&
               std::any_of(request.siteOfRank.begin(), request.siteOfRank.end(),
                           [&](int s) { return s != request.siteOfRank.front(); });
  std::vector<int> nodeOf = sites ? request.siteOfRank : request.nodeOfRank;
  if (nodeOf.size() != static_cast<size_t>(n)) nodeOf.assign(static_cast<size_t>(n), 0);
  Layout layout;
  std::vector<int> nodeIds;
  for (int r : ring) {
    auto it = std::find(nodeIds.begin(), nodeIds.end(), nodeOf[static_cast<size_t>(r)]);
    if (it == nodeIds.end()) {
      nodeIds.push_back(nodeOf[static_cast<size_t>(r)]);
      layout.nodes.emplace_back();
      it = nodeIds.end() - 1;
    }
    layout.nodes[static_cast<size_t>(it - nodeIds.begin())].push_back(r);
  }
  layout.m = static_cast<int>(layout.nodes.size());
  layout.l = static_cast<int>(layout.nodes.front().size());
  bool even = std::all_of(layout.nodes.begin(), layout.nodes.end(),
                          [&](const std::vector<int>& ranks) { return static_cast<int>(ranks.size()) == layout.l; });
  layout.flat = layout.m == 1 || layout.l == 1 || !even;
  if (!layout.flat) layout.find(request.rank, &layout.node, &layout.local);
  return layout;
}

// Reduce-scatter: rank r ends with block r reduced over every rank.
void reduceScatterSteps(const Layout& g, std::vector<Step>& steps) {
  int q = g.node, i = g.local;
  int railNext = g.at(q + 1, i), railPrev = g.at(q - 1, i);
  const std::vector<int>& members = g.nodes[static_cast<size_t>(q)];
  for (int s = 0; s < g.m; ++s) {
    // Rail step s reduces the block of rail position q-1-s: inside the node
    // the ring over node (q-1-s)'s blocks brings this node's partial.
    int j = ((q - 1 - s) % g.m + g.m) % g.m;
    const std::vector<int>& blockOf = g.nodes[static_cast<size_t>(j)];  // each rank's block is its own
    Step last = openRingReduceScatter(members, i, blockOf, steps);
    int block = last.block;
    if (s == 0) {
      steps.push_back(makeStep(StepOp::RecvReduceSend, last.recvPeer, railNext, in(block), {}));
    } else if (s < g.m - 1) {
      steps.push_back(fanningIn(makeStep(StepOp::RecvReduceSend, last.recvPeer, railNext, in(block), {}), railPrev));
    } else {
      steps.push_back(fanningIn(last, railPrev));  // block == this rank: the result
    }
  }
}

// All-gather: every rank's block to its rail, then around each node.
void allGatherSteps(const Layout& g, int rank, std::vector<Step>& steps) {
  steps.push_back(makeStep(StepOp::Copy, -1, -1, in(rank), out(rank)));
  // Rail member j holds block g.at(j, local): its own rank's.
  std::vector<int> rail = g.rail();
  ringAllGather(rail, g.node, rail, steps);
  const std::vector<int>& members = g.nodes[static_cast<size_t>(g.node)];
  for (int s = 0; s < g.m; ++s) {
    int j = ((g.node - s) % g.m + g.m) % g.m;
    const std::vector<int>& blockOf = g.nodes[static_cast<size_t>(j)];  // each rank's block is its own
    ringAllGather(members, g.local, blockOf, steps);
  }
}

// Broadcast in L blocks: block i down rail i from the root's node, then
// around each node.
void broadcastSteps(const Layout& g, int rank, int root, std::vector<Step>& steps) {
  int rootNode = 0, rootLocal = 0;
  g.find(root, &rootNode, &rootLocal);
  int q = g.node, i = g.local;
  int p = ((q - rootNode) % g.m + g.m) % g.m;  // place in the rail's chain
  int railNext = g.at(q + 1, i), railPrev = g.at(q - 1, i);
  if (rank == root) {
    for (int b = 0; b < g.l; ++b) steps.push_back(makeStep(StepOp::Copy, -1, -1, in(b), out(b)));
    for (int k = 0; k < g.l; ++k)
      if (k != i) steps.push_back(makeStep(StepOp::Send, -1, g.at(q, k), in(k), {}));
    steps.push_back(makeStep(StepOp::Send, -1, railNext, in(i), {}));
  } else {
    int from = p == 0 ? root : railPrev;
    if (p == g.m - 1)
      steps.push_back(makeStep(StepOp::Recv, from, -1, {}, out(i)));
    else
      steps.push_back(makeStep(StepOp::RecvSend, from, railNext, {}, out(i)));
  }
  std::vector<int> blockOf = identityRing(g.l);  // local rank k: block k
  ringAllGather(g.nodes[static_cast<size_t>(q)], i, blockOf, steps);
}

// Reduce in L blocks: reduce-scatter inside each node fused into chains
// down the rails to the root's node, whose ranks hand their block to the
// root.
void reduceSteps(const Layout& g, int rank, int root, std::vector<Step>& steps) {
  int rootNode = 0, rootLocal = 0;
  g.find(root, &rootNode, &rootLocal);
  int q = g.node, i = g.local;
  int p = ((q - rootNode - 1) % g.m + g.m) % g.m;  // the chain starts after the root's node, ends on it
  int railNext = g.at(q + 1, i), railPrev = g.at(q - 1, i);
  std::vector<int> blockOf = identityRing(g.l);  // local rank k: block k
  Step last = openRingReduceScatter(g.nodes[static_cast<size_t>(q)], i, blockOf, steps);
  Step step;
  if (p == 0) {
    step = makeStep(StepOp::RecvReduceSend, last.recvPeer, railNext, in(i), {});
  } else if (p < g.m - 1) {
    step = fanningIn(makeStep(StepOp::RecvReduceSend, last.recvPeer, railNext, in(i), {}), railPrev);
  } else if (rank == root) {
    step = fanningIn(last, railPrev);
  } else {
    step = fanningIn(makeStep(StepOp::RecvReduceSend, last.recvPeer, root, in(i), {}), railPrev);
  }
  steps.push_back(step);
  if (rank == root)
    for (int k = 0; k < g.l; ++k)
      if (k != i) steps.push_back(makeStep(StepOp::Recv, g.at(q, k), -1, {}, out(k), true));
}

}  // namespace

Plan buildHierarchicalPlan(const PlanRequest& request) {
  int n = request.nranks;
  Layout g = layoutOf(request);
  if (g.flat) {
    Plan flat = buildRingPlan(request);
    flat.algorithm = Algorithm::Hierarchical;
    return flat;
  }
  int m = g.m, l = g.l, node = g.node, local = g.local;
  Collective collective = request.collective;
  bool rooted = collectiveHasRoot(collective);
  Plan plan = newPlan(request, Algorithm::Hierarchical, rooted ? l : n);
  std::vector<Step> steps;
  if (collective == Collective::ReduceScatter) {
    reduceScatterSteps(g, steps);
  } else if (collective == Collective::AllGather) {
    allGatherSteps(g, request.rank, steps);
  } else if (rooted) {
    if (collective == Collective::Broadcast)
      broadcastSteps(g, request.rank, request.root, steps);
    else
      reduceSteps(g, request.rank, request.root, steps);
    // The call's description around the ring, as every rooted plan passes it.
    RingOrder ring = request.rings.empty() ? identityRing(n) : request.rings.front();
    int position = static_cast<int>(std::find(ring.begin(), ring.end(), request.rank) - ring.begin());
    withRingTokens(ring[static_cast<size_t>((position + 1) % n)], ring[static_cast<size_t>((position - 1 + n) % n)],
                   steps);
  } else {
    // All-reduce. Phase 1 and 3 run as M rings inside the node, ring j over
    // block j of every super-block; phase 2 is one ring across the nodes
    // over the M blocks of this rank's super-block.
    auto superBlockRing = [&](int j) {
      std::vector<int> blockOf(static_cast<size_t>(l));
      for (int i = 0; i < l; ++i) blockOf[static_cast<size_t>(i)] = i * m + j;
      return blockOf;
    };
    std::vector<int> railBlocks(static_cast<size_t>(m));
    for (int j = 0; j < m; ++j) railBlocks[static_cast<size_t>(j)] = local * m + j;
    std::vector<int> railMembers = g.rail();
    const std::vector<int>& nodeMembers = g.nodes[static_cast<size_t>(node)];
    for (int j = 0; j < m; ++j) ringReduceScatter(nodeMembers, local, superBlockRing(j), false, false, steps);
    size_t railFirst = steps.size();
    ringReduceScatter(railMembers, node, railBlocks, true, true, steps);
    ringAllGather(railMembers, node, railBlocks, steps);
    // Software-pipelined (StepWalk) in three stages, cut at the first and
    // the last receive from the rail: while a slice's data crosses the
    // network (or the site link), the rank reduces the next slice inside its
    // node and gathers the previous one there. What the rail's first send
    // carries and what its last forward carries are taken a stage later;
    // every other message in the stage that sends it.
    stagedAroundReceivesFrom(g.at(node - 1, local), railFirst, steps.size(), steps);
    for (int j = 0; j < m; ++j) ringAllGather(nodeMembers, local, superBlockRing(j), steps);
  }
  for (int c = 0; c < request.nChannels; ++c) plan.addChannel(steps);
  noteScratch(plan);
  return plan;
}

namespace {

// The query of a group's view with sites left out: the plan of M sites of l
// ranks costs, inside and between groups, what M nodes of l ranks would.
CostQuery withoutSites(const CostQuery& query, double l) {
  CostQuery q = query;
  q.shape.nSites = 1;
  q.shape.nNodes = static_cast<int>(query.shape.nranks / l);
  q.shape.ranksPerNode = static_cast<int>(l);
  q.shape.uniformNodes = true;
  return q;
}

// Moves the terms of M groups of l ranks onto the machine with sites: the
// hops between groups onto the site links, those inside onto the site's
// network (several nodes) or its node.
void acrossSites(const CostQuery& query, double l, CostTerms* t) {
  const CostShape& shape = query.shape;
  bool severalNodes = cost::nodesPerSite(shape) > 1;
  double perNode = shape.ranksPerNode;
  t->chained = true;
  t->wanHops = t->netHops;
  t->wanBytes = perNode * t->netBytes / l;  // a node's ranks' rails
  t->netHops = severalNodes ? t->hops : 0;
  if (severalNodes) t->hops = 0;
  // Inside a site, each node sends what one rank's ring inside the group does.
  double within = query.collective == Collective::AllReduce ? 2 * (l - 1) / l : (l - 1) / l;
  t->netBytes = severalNodes ? within * static_cast<double>(query.bytes) : 0;
}

}  // namespace

// All-reduce: reduce-scatter and all-gather inside the node (l ranks,
// 2(l-1) hops, M rings of S/n blocks each), all-reduce across the M nodes on
// S/l per rank (2(M-1) network hops). A node sends 2(M-1)/M S each way over
// the network; its ranks reduce and copy about what the flat ring's do.
// Reduce-scatter and all-gather: M rings of l-1 hops inside the node, M-1
// across; a node sends (M-1)/M S. Broadcast and reduce: l-1 hops inside a
// node and M-1 across plus the hand-over on the root's node; a node moves S
// over the network, as the chain does, but spread over its l ranks, and the
// blocks go around the node once more (what the cost counts: it sees one
// network link per node, so it prefers the chain unless latency decides).
// Nodes of different sizes, one node or one rank per node: the flat ring's
// plan, so the ring's entry stands for it.
//
// Across sites the groups are the sites (M of them, l = n/M ranks each):
// the hops inside a group cross the site's network where it has several
// nodes, those between groups the site link, which each rank's rail uses
// for its S/l, so a node of r ranks sends r times a rail's bytes over it.
bool hierarchicalCost(const CostQuery& query, CostTerms* terms) {
  const CostShape& shape = query.shape;
  bool sites = cost::spansSites(query);
  if (sites ? shape.nranks % shape.nSites != 0 : shape.nNodes <= 1 || shape.ranksPerNode <= 1 || !shape.uniformNodes)
    return false;
  double n = shape.nranks, m = sites ? shape.nSites : shape.nNodes;
  double l = sites ? n / m : shape.ranksPerNode, S = static_cast<double>(query.bytes);
  CostTerms& t = *terms;
  t.chained = true;
  if (sites) {
    // One rank a site: the flat ring's plan, as with one rank a node.
    if (l < 2 || !hierarchicalCost(withoutSites(query, l), terms)) return false;
    acrossSites(query, l, terms);
    return true;
  }
  switch (query.collective) {
    case Collective::ReduceScatter:
      t.hops = m * (l - 1);
      t.netHops = m - 1;
      t.reduceBytes = (n - 1) / n * S;
      t.copyBytes = S / n;
      t.netBytes = (m - 1) / m * S;
      t.pieces = cost::pieces(query, m * (l - 1) + (m - 1), S / n);
      return true;
    case Collective::AllGather:
      t.hops = m * (l - 1);
      t.netHops = m - 1;
      t.copyBytes = (n + 1) / n * S;
      t.netBytes = (m - 1) / m * S;
      t.pieces = cost::pieces(query, m * (l - 1) + (m - 1), S / n);
      return true;
    case Collective::Broadcast:
    case Collective::Reduce:
      t.hops = l;
      t.netHops = m - 1;
      (query.collective == Collective::Broadcast ? t.copyBytes : t.reduceBytes) = S;
      t.copyBytes += (l - 1) / l * S;
      t.netBytes = S;
      t.pieces = cost::pieces(query, l, S / l);
      return true;
    default: break;
  }
  t.hops = 2 * (l - 1);
  t.netHops = 2 * (m - 1);
  t.reduceBytes = (l - 1) / l * S + (m - 1) / m * S / l;
  t.copyBytes = S / l + (m - 1) / m * S / l + (l - 1) / l * S;
  t.netBytes = 2 * (m - 1) / m * S;
  t.pieces = cost::pieces(query, 2 * m * (l - 1) + 2 * (m - 1), S / n);
  return true;
}

}  // namespace weft
