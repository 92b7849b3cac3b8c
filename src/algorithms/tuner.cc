#include "algorithms/tuner.h"

#include <algorithm>

#include "core/logging.h"

namespace weft {

namespace {
constexpr int kCollectives = 5;  // AllReduce .. Reduce
constexpr int kAlgorithms = 3;
}  // namespace

Tuner::Tuner(TunerConfig config) : config_(std::move(config)) {
  if (config_.rings.empty()) config_.rings.push_back(identityRing(config_.nranks));
  size_t n = static_cast<size_t>(kCollectives) * kAlgorithms * (config_.nranks + 1) * (kMaxChannels + 1);
  slots_.reset(new std::atomic<const Plan*>[n]);
  for (size_t i = 0; i < n; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
}

size_t Tuner::slotIndex(Collective collective, Algorithm algorithm, int root, int channels) const {
  size_t index = static_cast<size_t>(collective);
  index = index * kAlgorithms + static_cast<size_t>(algorithm);
  index = index * (config_.nranks + 1) + static_cast<size_t>(root + 1);
  return index * (kMaxChannels + 1) + static_cast<size_t>(channels);
}

const Plan* Tuner::plan(Collective collective, size_t bytes, int root) {
  Algorithm algorithm = Algorithm::Ring;
  bool twoShotCapable = collective == Collective::AllReduce || collective == Collective::ReduceScatter ||
                        collective == Collective::AllGather;
  if (config_.forcedAlgo == "oneshot" && collective == Collective::AllReduce) {
    algorithm = Algorithm::OneShot;
  } else if (config_.forcedAlgo == "twoshot" && twoShotCapable) {
    algorithm = Algorithm::TwoShot;
  } else if (config_.forcedAlgo.empty()) {
    if (collective == Collective::AllReduce && bytes <= kOneShotMaxBytes && config_.nranks <= kOneShotMaxRanks)
      algorithm = Algorithm::OneShot;
    else if (twoShotCapable && config_.nranks >= kTwoShotMinRanks && config_.nranks <= kTwoShotMaxRanks)
      algorithm = Algorithm::TwoShot;
  }
  // The channels the topology search chose (1 on host memory, where one
  // worker thread drives every channel of a rank and extra channels add no
  // parallelism); WEFT_NCHANNELS overrides.
  int channels = config_.forcedChannels > 0 ? config_.forcedChannels : config_.searchChannels;
  channels = std::clamp(channels, 1, std::min(config_.maxChannels, kMaxChannels));
  if (algorithm == Algorithm::OneShot) channels = 1;
  if (collective != Collective::Broadcast && collective != Collective::Reduce) root = -1;

  std::atomic<const Plan*>& slot = slots_[slotIndex(collective, algorithm, root, channels)];
  if (const Plan* cached = slot.load(std::memory_order_acquire)) return cached;
  std::lock_guard<std::mutex> lock(mutex_);
  if (const Plan* cached = slot.load(std::memory_order_acquire)) return cached;
  std::shared_ptr<const Plan> built;
  switch (algorithm) {
    case Algorithm::OneShot: built = buildOneShotPlan(config_.nranks, channels); break;
    case Algorithm::TwoShot: built = buildTwoShotPlan(collective, config_.nranks, channels); break;
    case Algorithm::Ring: built = buildRingPlan(collective, config_.nranks, root, channels, config_.rings); break;
  }
  WEFT_INFO(kLogTune, "built plan %s/%s for %d ranks, root %d, %d channel(s)", collectiveName(collective),
            algorithmName(algorithm), config_.nranks, root, channels);
  owned_.push_back(std::make_unique<const Plan>(*built));
  slot.store(owned_.back().get(), std::memory_order_release);
  return owned_.back().get();
}

}  // namespace weft
