// Every algorithm weft has, in one table: its name (what WEFT_ALGO takes,
// case-insensitively, and what weft-info lists), the collectives it builds
// plans for, and its builder. The tuner chooses among the entries that
// support a call, the verifier and the collective suites run every entry,
// so adding an algorithm is one builder file and its line in registry.cc.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "algorithms/plan.h"

namespace weft {

struct AlgorithmEntry {
  Algorithm id;
  const char* name;
  const char* summary;
  // The collectives it builds plans for, as a bit per Collective.
  uint32_t collectives;
  Plan (*build)(const PlanRequest& request);

  bool supports(Collective collective) const { return (collectives >> static_cast<int>(collective)) & 1u; }
};

std::span<const AlgorithmEntry> algorithmRegistry();
const AlgorithmEntry& algorithmEntry(Algorithm id);
// By name, ignoring case; nullptr when there is none.
const AlgorithmEntry* findAlgorithm(std::string_view name);
// "ring, oneshot, twoshot": for messages that list the valid names.
std::string algorithmNames();
// The collectives an entry supports, as "AllReduce, Broadcast, ...".
std::string supportedCollectives(const AlgorithmEntry& entry);

// Every rank's program for one call (the verifier's input, and tests'):
// request.rank is ignored.
PlanSet buildPlanSet(const AlgorithmEntry& entry, PlanRequest request);

// The builders (one file each).
Plan buildRingPlan(const PlanRequest& request);
Plan buildOneShotPlan(const PlanRequest& request);
Plan buildTwoShotPlan(const PlanRequest& request);
Plan buildTreePlan(const PlanRequest& request);
Plan buildDirectPlan(const PlanRequest& request);
Plan buildHierarchicalPlan(const PlanRequest& request);

}  // namespace weft
