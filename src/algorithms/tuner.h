// The tuner picks an algorithm and channel count per call, and caches plans
// so that a call costs a lookup, not a plan build.
//
// Cost model on host memory, n ranks, S bytes, hop latency a, copy bandwidth b:
//   ring all-reduce     2(n-1) a + 2 (n-1)/n S / b   (each byte reduced once)
//   one-shot all-reduce        a + (n-1) S / b       (every rank reduces all)
// so one-shot wins while the latency saved, (2n-3) a, exceeds the extra
// traffic; with a ~0.2-0.5 us and b ~ 10 GB/s that is a few KiB per peer,
// and kOneShotMaxBytes sits there. WEFT_ALGO overrides.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "algorithms/plan.h"

namespace weft {

struct TunerConfig {
  int nranks = 1;
  int maxChannels = 1;     // channels the transport was built with
  int forcedChannels = 0;  // WEFT_NCHANNELS, 0 = choose
  std::string forcedAlgo;  // WEFT_ALGO
  RingOrder ring;
};

class Tuner {
 public:
  static constexpr size_t kOneShotMaxBytes = 32 * 1024;
  static constexpr int kOneShotMaxRanks = 8;

  explicit Tuner(TunerConfig config) : config_(std::move(config)) {}
  std::shared_ptr<const Plan> plan(Collective collective, size_t bytes, int root);
  const TunerConfig& config() const { return config_; }

 private:
  TunerConfig config_;
  std::mutex mutex_;
  std::map<std::tuple<int, int, int, int>, std::shared_ptr<const Plan>> cache_;
};

}  // namespace weft
