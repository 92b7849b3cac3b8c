#include "algorithms/registry.h"

#include <strings.h>

#include <cstring>

#include "core/status.h"

namespace weft {
namespace {

constexpr uint32_t bit(Collective c) { return 1u << static_cast<int>(c); }
constexpr uint32_t kRooted = bit(Collective::Broadcast) | bit(Collective::Reduce);
constexpr uint32_t kBlocked = bit(Collective::AllReduce) | bit(Collective::ReduceScatter) | bit(Collective::AllGather);

// In Algorithm order.
const AlgorithmEntry kRegistry[] = {
    {Algorithm::Ring, "ring",
     "reduce-scatter + all-gather around the topology's ring (and chains along it for broadcast and reduce): "
     "minimum bytes per link, 2(n-1) hops of latency",
     kBlocked | kRooted, buildRingPlan, ringCost},
    {Algorithm::OneShot, "oneshot",
     "every rank sends its whole input to every peer and reduces all of them: one hop, (n-1)x the bytes",
     bit(Collective::AllReduce), buildOneShotPlan, oneShotCost},
    {Algorithm::TwoShot, "twoshot",
     "reduce-scatter then all-gather straight between every pair: the ring's bytes in two hops", kBlocked,
     buildTwoShotPlan, twoShotCost},
    {Algorithm::Tree, "tree",
     "all-reduce: double binary tree, each half of the buffer reduced up one tree and broadcast back down "
     "it, about 2 log2(n) hops; broadcast and reduce: one binary tree rooted at the root, log2(n) hops",
     bit(Collective::AllReduce) | kRooted, buildTreePlan, treeCost},
    {Algorithm::Direct, "direct",
     "every block straight from the rank that has it to the rank that wants it: one hop, no byte moved twice",
     bit(Collective::AllToAll) | bit(Collective::Gather) | bit(Collective::Scatter) | bit(Collective::Broadcast),
     buildDirectPlan, directCost},
    {Algorithm::Hierarchical, "hierarchical",
     "reduce-scatter inside each node, all-reduce across nodes between the ranks holding the same slice "
     "(rails), all-gather inside each node: the network carries the minimum (the flat ring on one node); "
     "reduce-scatter, all-gather, broadcast and reduce likewise over rails",
     bit(Collective::AllReduce) | bit(Collective::ReduceScatter) | bit(Collective::AllGather) | kRooted,
     buildHierarchicalPlan, hierarchicalCost},
};

}  // namespace

std::span<const AlgorithmEntry> algorithmRegistry() { return kRegistry; }

const AlgorithmEntry& algorithmEntry(Algorithm id) { return kRegistry[static_cast<size_t>(id)]; }

const AlgorithmEntry* findAlgorithm(std::string_view name) {
  for (const AlgorithmEntry& entry : kRegistry)
    if (name.size() == strlen(entry.name) && strncasecmp(entry.name, name.data(), name.size()) == 0) return &entry;
  return nullptr;
}

std::string algorithmNames() {
  std::string names;
  for (const AlgorithmEntry& entry : kRegistry) names += (names.empty() ? "" : ", ") + std::string(entry.name);
  return names;
}

Status checkForcedAlgorithm(const std::string& name) {
  if (name.empty() || findAlgorithm(name) != nullptr) return Status::ok();
  return WEFT_ERROR(weftInvalidArgument, "WEFT_ALGO=%s: no such algorithm; expected one of %s", name.c_str(),
                    algorithmNames().c_str());
}

std::string supportedCollectives(const AlgorithmEntry& entry) {
  std::string out;
  for (Collective c : {Collective::AllReduce, Collective::ReduceScatter, Collective::AllGather, Collective::Broadcast,
                       Collective::Reduce, Collective::AllToAll, Collective::Gather, Collective::Scatter})
    if (entry.supports(c)) out += (out.empty() ? "" : ", ") + std::string(collectiveName(c));
  return out;
}

PlanSet buildPlanSet(const AlgorithmEntry& entry, PlanRequest request) {
  PlanSet plans;
  plans.reserve(static_cast<size_t>(request.nranks));
  for (int r = 0; r < request.nranks; ++r) {
    request.rank = r;
    plans.push_back(entry.build(request));
  }
  return plans;
}

}  // namespace weft
