// Every algorithm weft has, in one table: its name (what WEFT_ALGO takes,
// case-insensitively, and what weft-info lists), the collectives it builds
// plans for, its builder and its cost function. The tuner chooses among the
// entries that support a call by their predicted times, the verifier and
// the collective suites run every entry, so adding an algorithm is one file
// (builder and cost) and its line in registry.cc.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "algorithms/cost_model.h"
#include "algorithms/plan.h"
#include "core/status.h"

namespace weft {

struct AlgorithmEntry {
  Algorithm id;
  const char* name;
  const char* summary;
  // The collectives it builds plans for, as a bit per Collective.
  uint32_t collectives;
  Plan (*build)(const PlanRequest& request);
  // What a call costs (cost_model.h); called only for the collectives the
  // entry supports. False when it does not build this shape better than
  // another entry would (the hierarchical algorithm on one node, which is
  // the flat ring there).
  bool (*cost)(const CostQuery& query, CostTerms* terms);

  bool supports(Collective collective) const { return (collectives >> static_cast<int>(collective)) & 1u; }
};

std::span<const AlgorithmEntry> algorithmRegistry();
const AlgorithmEntry& algorithmEntry(Algorithm id);
// By name, ignoring case; nullptr when there is none.
const AlgorithmEntry* findAlgorithm(std::string_view name);
// "ring, oneshot, twoshot": for messages that list the valid names.
std::string algorithmNames();
// WEFT_ALGO's value: empty (the tuner chooses) or a registry name; else an
// error that lists the valid ones.
Status checkForcedAlgorithm(const std::string& name);
// The collectives an entry supports, as "AllReduce, Broadcast, ...".
std::string supportedCollectives(const AlgorithmEntry& entry);

// Every rank's program for one call (the verifier's input, and tests'):
// request.rank is ignored.
PlanSet buildPlanSet(const AlgorithmEntry& entry, PlanRequest request);

// The builders and their costs (one file each).
Plan buildRingPlan(const PlanRequest& request);
bool ringCost(const CostQuery& query, CostTerms* terms);
Plan buildOneShotPlan(const PlanRequest& request);
bool oneShotCost(const CostQuery& query, CostTerms* terms);
Plan buildTwoShotPlan(const PlanRequest& request);
bool twoShotCost(const CostQuery& query, CostTerms* terms);
Plan buildTreePlan(const PlanRequest& request);
bool treeCost(const CostQuery& query, CostTerms* terms);
Plan buildDirectPlan(const PlanRequest& request);
bool directCost(const CostQuery& query, CostTerms* terms);
Plan buildHierarchicalPlan(const PlanRequest& request);

// Send and receive are plans too (not registry entries: there is nothing to
// choose): one step on channel 0 to or from peer, with emptyMessages and
// concurrent set. A group of them runs as their plans side by side.
Plan buildPointToPointPlan(Collective direction, int nranks, int rank, int peer);
bool hierarchicalCost(const CostQuery& query, CostTerms* terms);

}  // namespace weft
