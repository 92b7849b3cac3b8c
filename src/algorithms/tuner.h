// The tuner picks an algorithm and channel count per call by the cost model
// (cost_model.h): every registry entry that builds the collective, with
// every channel count the transport has, is a candidate with a predicted
// time, and the cheapest wins (ties to the earlier registry entry and fewer
// channels). Decisions are made once per (collective, size class), a size
// class being the sizes from one power of two up to the next, at the class's
// lower bound: every rank has the same constants and shape, so every rank
// decides alike, and weft-info --tune prints exactly what runs. WEFT_ALGO
// overrides the algorithm, WEFT_NCHANNELS the channels. Device communicators
// inside one node weigh both protocols (simple and LL) per candidate, so the
// protocol is chosen with the algorithm. Plans are cached so that a call
// costs a lookup, not a plan build (a plan serves both protocols: only the
// slot size, which the executor applies, differs).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "algorithms/cost_model.h"
#include "algorithms/registry.h"
#include "core/status.h"

namespace weft {

struct TunerConfig {
  int nranks = 1;
  int rank = 0;              // plans are this rank's programs
  int maxChannels = 1;       // channels the transport was built with (what the topology search found)
  int forcedChannels = 0;    // WEFT_NCHANNELS, 0 = choose
  std::string forcedAlgo;    // WEFT_ALGO (a registry name, any case)
  bool verifyPlans = false;  // WEFT_VERIFY_PLANS, or a Debug build
  // Channel c of a ring plan follows rings[c % rings.size()].
  std::vector<RingOrder> rings;
  std::vector<int> nodeOfRank;  // for hierarchical plans, and the cost shape
  std::vector<int> siteOfRank;  // for hierarchical plans (several sites: their groups)
  CostConstants constants;      // rank 0's
  // Device communicators inside one node: the LL protocol is a candidate
  // beside the simple one (across nodes the net bridge moves whole slots).
  bool lowLatency = false;
  CostShape shape;  // nranks and nodes filled from the above when left default
};

// One candidate of a decision, with its predicted time.
struct TuneCandidate {
  const AlgorithmEntry* entry = nullptr;
  int channels = 1;
  Protocol protocol = Protocol::Simple;
  double micros = 0;
};

// The shape of a communicator of nranks ranks spread over nodes as
// nodeOfRank says (empty: one node), cores per node as given.
CostShape costShape(int nranks, const std::vector<int>& nodeOfRank, int coresPerNode, size_t slotBytes);
// Sets the shape's by-address window (CostShape::byAddressMinBytes) to the
// sizes processes of one node send by cross-memory attach:
// WEFT_CMA_THRESHOLD..WEFT_CMA_MAX (-1: no limit).
void setCrossMemoryAttachWindow(CostShape* shape);

class Tuner {
 public:
  static constexpr int kMaxChannels = 16;
  static constexpr int kSizeClasses = 65;  // 0 bytes, then [2^k, 2^(k+1)) for k = 0..63

  explicit Tuner(TunerConfig config);
  // This rank's plan for a call; built once, then found without a lock.
  // Plans live as long as the tuner. With verifyPlans every plan is first
  // proven (every rank's program built and run by the verifier); a plan that
  // fails is a bug, reported as weftInternalError. protocol (when not null)
  // receives the decision's protocol.
  Result<const Plan*> plan(Collective collective, size_t bytes, int root, Protocol* protocol = nullptr);
  // This rank's plan for a send to or a receive from peer (Send or Recv);
  // built on first use, then found without a lock.
  const Plan* pointToPointPlan(Collective direction, int peer);
  // Every candidate for a call of `bytes` bytes, cheapest first (what a
  // decision weighs; WEFT_ALGO and WEFT_NCHANNELS narrow it).
  std::vector<TuneCandidate> candidates(Collective collective, size_t bytes) const;
  // The decision for a call's size class (its first candidate), logged under
  // WEFT_DEBUG_SUBSYS=TUNE the first time.
  TuneCandidate decide(Collective collective, size_t bytes);
  const TunerConfig& config() const { return config_; }

  static int sizeClass(size_t bytes);
  static size_t classBytes(int sizeClass);  // the lower bound a class is decided at

 private:
  using Slot = std::atomic<const Plan*>;
  size_t slotIndex(Collective collective, Algorithm algorithm, int channels) const;
  // The cache slot of a plan; a root's table is made on the root's first use.
  Slot& slotFor(Collective collective, Algorithm algorithm, int root, int channels);

  TunerConfig config_;
  const AlgorithmEntry* forced_ = nullptr;
  std::mutex mutex_;  // guards building
  std::vector<std::unique_ptr<const Plan>> owned_;
  // Decisions per collective and size class: 0 undecided, else
  // (algorithm + 1) | channels << 8 | protocol << 16.
  std::unique_ptr<std::atomic<uint32_t>[]> decisions_;
  // Plans without a root, and one table per root used so far: a few KB per
  // root rather than a slot for every rank (130 MB at 16384 ranks).
  size_t slotsPerTable_ = 0;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<std::atomic<Slot*>[]> rootTables_;
  std::vector<std::unique_ptr<Slot[]>> ownedTables_;
  // Send and receive plans, 2 per peer (made on the first send or receive).
  std::atomic<Slot*> p2pSlots_{nullptr};
  std::unique_ptr<Slot[]> ownedP2pSlots_;
};

}  // namespace weft
