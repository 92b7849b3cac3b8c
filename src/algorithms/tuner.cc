#include "algorithms/tuner.h"

#include <algorithm>

#include "core/logging.h"

namespace weft {

std::shared_ptr<const Plan> Tuner::plan(Collective collective, size_t bytes, int root) {
  Algorithm algorithm = Algorithm::Ring;
  if (collective == Collective::AllReduce) {
    if (config_.forcedAlgo == "oneshot") algorithm = Algorithm::OneShot;
    else if (config_.forcedAlgo.empty() && bytes <= kOneShotMaxBytes &&
             config_.nranks <= kOneShotMaxRanks)
      algorithm = Algorithm::OneShot;
  }
  // One host worker thread drives every channel of a rank, so extra channels
  // add no parallelism on host memory; they exist for the transports that
  // have independent engines (and are tested through WEFT_NCHANNELS).
  int channels = config_.forcedChannels > 0 ? config_.forcedChannels : 1;
  channels = std::clamp(channels, 1, config_.maxChannels);
  if (algorithm == Algorithm::OneShot) channels = 1;
  if (collective != Collective::Broadcast && collective != Collective::Reduce) root = -1;

  auto key = std::make_tuple(static_cast<int>(collective), static_cast<int>(algorithm), root, channels);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  std::shared_ptr<const Plan> built =
      algorithm == Algorithm::OneShot
          ? buildOneShotPlan(config_.nranks, channels)
          : buildRingPlan(collective, config_.nranks, root, channels, config_.ring);
  WEFT_INFO(kLogTune, "built plan %s/%s for %d ranks, root %d, %d channel(s)",
            collectiveName(collective), algorithmName(algorithm), config_.nranks, root, channels);
  cache_.emplace(key, built);
  return built;
}

}  // namespace weft
