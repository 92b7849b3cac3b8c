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

#include <atomic>
#include <vector>
#include <memory>
#include <mutex>
#include <string>

#include "algorithms/registry.h"
#include "core/status.h"

namespace weft {

struct TunerConfig {
  int nranks = 1;
  int rank = 0;              // plans are this rank's programs
  int maxChannels = 1;       // channels the transport was built with
  int forcedChannels = 0;    // WEFT_NCHANNELS, 0 = choose
  int searchChannels = 1;    // what the topology search found the ring carries
  std::string forcedAlgo;    // WEFT_ALGO (a registry name, any case)
  bool verifyPlans = false;  // WEFT_VERIFY_PLANS, or a Debug build
  // Channel c of a ring plan follows rings[c % rings.size()].
  std::vector<RingOrder> rings;
  std::vector<int> nodeOfRank;  // for hierarchical plans
};

class Tuner {
 public:
  static constexpr size_t kOneShotMaxBytes = 32 * 1024;
  static constexpr int kOneShotMaxRanks = 8;
  // Two-shot keeps n-1 connections busy per rank; on one node's shared memory
  // every pair is equally close, and it spares oversubscribed cores the
  // ring's chains of ranks waiting on each other (4 processes on 2 cores:
  // 4.8-6.4 GB/s at 2 MiB against 4.1-7.4 for the ring, 4.7-4.8 against
  // 2.9-5.0 at 8 MiB). With 2 ranks the ring's fused receive-reduce-send
  // does less copying, so two-shot starts at 3.
  static constexpr int kTwoShotMinRanks = 3;
  static constexpr int kTwoShotMaxRanks = 8;

  static constexpr int kMaxChannels = 16;

  explicit Tuner(TunerConfig config);
  // This rank's plan for a call; built once, then found without a lock.
  // Plans live as long as the tuner. With verifyPlans every plan is first
  // proven (every rank's program built and run by the verifier); a plan that
  // fails is a bug, reported as weftInternalError.
  Result<const Plan*> plan(Collective collective, size_t bytes, int root);
  const TunerConfig& config() const { return config_; }

 private:
  using Slot = std::atomic<const Plan*>;
  size_t slotIndex(Collective collective, Algorithm algorithm, int channels) const;
  // The cache slot of a plan; a root's table is made on the root's first use.
  Slot& slotFor(Collective collective, Algorithm algorithm, int root, int channels);
  const AlgorithmEntry& choose(Collective collective, size_t bytes) const;

  TunerConfig config_;
  const AlgorithmEntry* forced_ = nullptr;
  std::mutex mutex_;  // guards building
  std::vector<std::unique_ptr<const Plan>> owned_;
  // Plans without a root, and one table per root used so far: a few KB per
  // root rather than a slot for every rank (130 MB at 16384 ranks).
  size_t slotsPerTable_ = 0;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<std::atomic<Slot*>[]> rootTables_;
  std::vector<std::unique_ptr<Slot[]>> ownedTables_;
};

}  // namespace weft
