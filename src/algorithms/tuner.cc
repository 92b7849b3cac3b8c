#include "algorithms/tuner.h"

#include <algorithm>

#include "algorithms/plan_verifier.h"
#include "core/env.h"
#include "core/logging.h"

namespace weft {

namespace {
constexpr int kCollectives = 10;  // every Collective (Send and Recv have no plans, but a slot each)
}  // namespace

Tuner::Tuner(TunerConfig config) : config_(std::move(config)) {
  if (config_.rings.empty()) config_.rings.push_back(identityRing(config_.nranks));
  if (!config_.forcedAlgo.empty()) forced_ = findAlgorithm(config_.forcedAlgo);  // validated by the communicator
  if (config_.shape.nranks != config_.nranks) {
    CostShape given = config_.shape;
    config_.shape = costShape(config_.nranks, config_.nodeOfRank, given.coresPerNode, given.slotBytes);
    config_.shape.byAddressMinBytes = given.byAddressMinBytes;
    config_.shape.byAddressMaxBytes = given.byAddressMaxBytes;
  }
  // Sites: the cost model weighs the site links (the ring order keeps each
  // site's ranks together, as the communicator builds it).
  if (config_.siteOfRank.size() == static_cast<size_t>(config_.nranks)) {
    std::vector<int> sites = config_.siteOfRank;
    std::sort(sites.begin(), sites.end());
    config_.shape.nSites = static_cast<int>(std::unique(sites.begin(), sites.end()) - sites.begin());
  }
  size_t cells = static_cast<size_t>(kCollectives) * kSizeClasses;
  decisions_.reset(new std::atomic<uint32_t>[cells]);
  for (size_t i = 0; i < cells; ++i) decisions_[i].store(0, std::memory_order_relaxed);
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

void setCrossMemoryAttachWindow(CostShape* shape) {
  int64_t cmaMax = envInt(EnvParam::CmaMax);
  shape->byAddressMinBytes = static_cast<size_t>(std::max<int64_t>(0, envInt(EnvParam::CmaThreshold)));
  shape->byAddressMaxBytes = cmaMax < 0 ? SIZE_MAX : static_cast<size_t>(cmaMax);
}

CostShape costShape(int nranks, const std::vector<int>& nodeOfRank, int coresPerNode, size_t slotBytes) {
  CostShape shape;
  shape.nranks = nranks;
  shape.coresPerNode = std::max(1, coresPerNode);
  shape.slotBytes = slotBytes;
  std::vector<int> ranksOfNode;
  for (int r = 0; r < nranks; ++r) {
    int node = nodeOfRank.size() == static_cast<size_t>(nranks) ? nodeOfRank[r] : 0;
    if (node >= static_cast<int>(ranksOfNode.size())) ranksOfNode.resize(static_cast<size_t>(node) + 1, 0);
    ++ranksOfNode[static_cast<size_t>(node)];
  }
  shape.nNodes = 0;
  shape.ranksPerNode = 0;
  int first = 0;
  for (int count : ranksOfNode) {
    if (count == 0) continue;
    if (shape.nNodes++ == 0) first = count;
    shape.ranksPerNode = std::max(shape.ranksPerNode, count);
    if (count != first) shape.uniformNodes = false;
  }
  shape.nNodes = std::max(1, shape.nNodes);
  shape.ranksPerNode = std::max(1, shape.ranksPerNode);
  return shape;
}

int Tuner::sizeClass(size_t bytes) { return bytes == 0 ? 0 : 64 - __builtin_clzll(bytes); }

size_t Tuner::classBytes(int sizeClass) { return sizeClass == 0 ? 0 : size_t{1} << (sizeClass - 1); }

std::vector<TuneCandidate> Tuner::candidates(Collective collective, size_t bytes) const {
  int top = std::min(config_.maxChannels, kMaxChannels);
  int lowest = 1, highest = std::max(1, top);
  if (config_.forcedChannels > 0) lowest = highest = std::clamp(config_.forcedChannels, 1, std::max(1, top));
  std::vector<TuneCandidate> out;
  std::vector<Protocol> protocols = {Protocol::Simple};
  if (config_.lowLatency) protocols.push_back(Protocol::LowLatency);
  for (const AlgorithmEntry& entry : algorithmRegistry()) {
    if (!entry.supports(collective)) continue;
    if (forced_ != nullptr && forced_->supports(collective) && &entry != forced_) continue;
    for (Protocol protocol : protocols)
      for (int channels = lowest; channels <= highest; ++channels) {
        CostQuery query;
        query.collective = collective;
        query.bytes = bytes;
        query.channels = channels;
        query.protocol = protocol;
        query.shape = config_.shape;
        if (protocol == Protocol::LowLatency) query.shape.slotBytes = config_.shape.llSlotBytes;
        query.constants = config_.constants;
        CostTerms terms;
        if (!entry.cost(query, &terms) && &entry != forced_) break;
        out.push_back({&entry, channels, protocol, costMicros(query, terms)});
      }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const TuneCandidate& a, const TuneCandidate& b) { return a.micros < b.micros; });
  return out;
}

TuneCandidate Tuner::decide(Collective collective, size_t bytes) {
  int cls = sizeClass(bytes);
  std::atomic<uint32_t>& cell = decisions_[static_cast<size_t>(collective) * kSizeClasses + static_cast<size_t>(cls)];
  uint32_t packed = cell.load(std::memory_order_acquire);
  if (packed != 0) {
    TuneCandidate known;
    known.entry = &algorithmEntry(static_cast<Algorithm>((packed & 0xff) - 1));
    known.channels = static_cast<int>((packed >> 8) & 0xff);
    known.protocol = static_cast<Protocol>(packed >> 16);
    return known;
  }
  std::vector<TuneCandidate> all = candidates(collective, classBytes(cls));
  TuneCandidate best =
      all.empty() ? TuneCandidate{&algorithmEntry(Algorithm::Ring), 1, Protocol::Simple, 0} : all.front();
  uint32_t mine = (static_cast<uint32_t>(best.entry->id) + 1) | static_cast<uint32_t>(best.channels) << 8 |
                  static_cast<uint32_t>(best.protocol) << 16;
  uint32_t expected = 0;
  if (cell.compare_exchange_strong(expected, mine, std::memory_order_acq_rel) && config_.rank == 0 &&
      logEnabled(LogLevel::Info, kLogTune)) {
    auto name = [this](const TuneCandidate& c) {
      return config_.lowLatency ? format("%s/%d/%s", c.entry->name, c.channels, protocolName(c.protocol))
                                : format("%s/%d", c.entry->name, c.channels);
    };
    std::string list;
    for (const TuneCandidate& c : all)
      list += format("%s%s %.1f us", list.empty() ? "" : ", ", name(c).c_str(), c.micros);
    WEFT_INFO(kLogTune, "%s of %zu B and up (%d ranks, %d node(s)): %s -> %s%s", collectiveName(collective),
              classBytes(cls), config_.nranks, config_.shape.nNodes, list.c_str(), name(best).c_str(),
              forced_ != nullptr && forced_ == best.entry ? " (WEFT_ALGO)" : "");
  }
  return best;
}

Result<const Plan*> Tuner::plan(Collective collective, size_t bytes, int root, Protocol* protocol) {
  TuneCandidate decision = decide(collective, bytes);
  if (protocol != nullptr) *protocol = decision.protocol;
  const AlgorithmEntry& entry = *decision.entry;
  int channels = decision.channels;
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
  request.siteOfRank = config_.siteOfRank;
  if (config_.verifyPlans) {
    Status proven = verifyPlansEveryWay(buildPlanSet(entry, request));
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

const Plan* Tuner::pointToPointPlan(Collective direction, int peer) {
  size_t index = 2 * static_cast<size_t>(peer) + (direction == Collective::Send ? 1 : 0);
  Slot* slots = p2pSlots_.load(std::memory_order_acquire);
  if (slots != nullptr)
    if (const Plan* cached = slots[index].load(std::memory_order_acquire)) return cached;
  std::lock_guard<std::mutex> lock(mutex_);
  if (ownedP2pSlots_ == nullptr) {
    ownedP2pSlots_ = std::make_unique<Slot[]>(2 * static_cast<size_t>(config_.nranks));
    p2pSlots_.store(ownedP2pSlots_.get(), std::memory_order_release);
  }
  Slot& slot = ownedP2pSlots_[index];
  if (const Plan* cached = slot.load(std::memory_order_acquire)) return cached;
  owned_.push_back(std::make_unique<const Plan>(buildPointToPointPlan(direction, config_.nranks, config_.rank, peer)));
  slot.store(owned_.back().get(), std::memory_order_release);
  return owned_.back().get();
}

}  // namespace weft
