#include "algorithms/tuner.h"

#include <algorithm>

#include "algorithms/plan_verifier.h"
#include "core/logging.h"

namespace weft {

namespace {
constexpr int kCollectives = 10;  // every Collective (Send and Recv have no plans, but a slot each)
}  // namespace

Tuner::Tuner(TunerConfig config) : config_(std::move(config)) {
  if (config_.rings.empty()) config_.rings.push_back(identityRing(config_.nranks));
  if (!config_.forcedAlgo.empty()) forced_ = findAlgorithm(config_.forcedAlgo);  // validated by the communicator
  slotsPerTable_ = static_cast<size_t>(kCollectives) * algorithmRegistry().size() * (kMaxChannels + 1);
  slots_.reset(new Slot[slotsPerTable_]);
  for (size_t i = 0; i < slotsPerTable_; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
  rootTables_.reset(new std::atomic<Slot*>[static_cast<size_t>(config_.nranks)]);
  for (int r = 0; r < config_.nranks; ++r) rootTables_[r].store(nullptr, std::memory_order_relaxed);
}

size_t Tuner::slotIndex(Collective collective, Algorithm algorithm, int channels) const {
  size_t index = static_cast<size_t>(collective);
  index = index * algorithmRegistry().size() + static_cast<size_t>(algorithm);
  return index * (kMaxChannels + 1) + static_cast<size_t>(channels);
}

Tuner::Slot& Tuner::slotFor(Collective collective, Algorithm algorithm, int root, int channels) {
  size_t index = slotIndex(collective, algorithm, channels);
  if (root < 0) return slots_[index];
  Slot* table = rootTables_[root].load(std::memory_order_acquire);
  if (table == nullptr) {
    std::lock_guard<std::mutex> lock(mutex_);
    table = rootTables_[root].load(std::memory_order_acquire);
    if (table == nullptr) {
      ownedTables_.emplace_back(new Slot[slotsPerTable_]);
      table = ownedTables_.back().get();
      for (size_t i = 0; i < slotsPerTable_; ++i) table[i].store(nullptr, std::memory_order_relaxed);
      rootTables_[root].store(table, std::memory_order_release);
    }
  }
  return table[index];
}

// WEFT_ALGO when it names an algorithm for this collective; otherwise
// one-shot for small all-reduces on few ranks, two-shot between 3 and 8
// ranks, the ring for everything else (see the constants in tuner.h).
const AlgorithmEntry& Tuner::choose(Collective collective, size_t bytes) const {
  if (forced_ != nullptr && forced_->supports(collective)) return *forced_;
  const AlgorithmEntry& ring = algorithmEntry(Algorithm::Ring);
  if (!ring.supports(collective)) {  // all-to-all, gather, scatter: the first that builds it
    for (const AlgorithmEntry& entry : algorithmRegistry())
      if (entry.supports(collective)) return entry;
  }
  if (forced_ == nullptr) {
    const AlgorithmEntry& oneShot = algorithmEntry(Algorithm::OneShot);
    const AlgorithmEntry& twoShot = algorithmEntry(Algorithm::TwoShot);
    if (oneShot.supports(collective) && bytes <= kOneShotMaxBytes && config_.nranks <= kOneShotMaxRanks) return oneShot;
    if (twoShot.supports(collective) && config_.nranks >= kTwoShotMinRanks && config_.nranks <= kTwoShotMaxRanks)
      return twoShot;
  }
  return ring;
}

Result<const Plan*> Tuner::plan(Collective collective, size_t bytes, int root) {
  const AlgorithmEntry& entry = choose(collective, bytes);
  // The channels the topology search chose (1 on host memory, where one
  // worker thread drives every channel of a rank and extra channels add no
  // parallelism); WEFT_NCHANNELS overrides.
  int channels = config_.forcedChannels > 0 ? config_.forcedChannels : config_.searchChannels;
  channels = std::clamp(channels, 1, std::min(config_.maxChannels, kMaxChannels));
  if (entry.id == Algorithm::OneShot) channels = 1;
  if (!collectiveHasRoot(collective)) root = -1;

  Slot& slot = slotFor(collective, entry.id, root, channels);
  if (const Plan* cached = slot.load(std::memory_order_acquire)) return cached;
  std::lock_guard<std::mutex> lock(mutex_);
  if (const Plan* cached = slot.load(std::memory_order_acquire)) return cached;
  PlanRequest request;
  request.collective = collective;
  request.nranks = config_.nranks;
  request.rank = config_.rank;
  request.root = root;
  request.nChannels = channels;
  request.rings = config_.rings;
  request.nodeOfRank = config_.nodeOfRank;
  if (config_.verifyPlans) {
    Status proven = verifyPlans(buildPlanSet(entry, request));
    if (!proven.isOk())
      return WEFT_ERROR(weftInternalError, "rank %d: the %s plan for %s on %d ranks failed verification: %s",
                        config_.rank, entry.name, collectiveName(collective), config_.nranks, proven.message().c_str());
  }
  auto built = std::make_unique<const Plan>(entry.build(request));
  WEFT_INFO(kLogTune, "rank %d: built plan %s/%s for %d ranks, root %d, %d channel(s), %zu steps, %zu bytes%s",
            config_.rank, collectiveName(collective), entry.name, config_.nranks, root, channels, built->steps.size(),
            built->bytes(), config_.verifyPlans ? ", verified" : "");
  owned_.push_back(std::move(built));
  slot.store(owned_.back().get(), std::memory_order_release);
  return owned_.back().get();
}

}  // namespace weft
