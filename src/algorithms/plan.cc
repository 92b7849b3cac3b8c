#include "algorithms/plan.h"

#include <algorithm>

#include <strings.h>

#include "algorithms/registry.h"

#include "core/status.h"

namespace weft {

namespace {
constexpr Collective kPlannedCollectives[] = {Collective::AllReduce, Collective::ReduceScatter, Collective::AllGather,
                                              Collective::Broadcast, Collective::Reduce,        Collective::AllToAll,
                                              Collective::Gather,    Collective::Scatter};
}  // namespace

std::span<const Collective> plannedCollectives() { return kPlannedCollectives; }

const Collective* findPlannedCollective(std::string_view name) {
  for (const Collective& c : kPlannedCollectives) {
    std::string_view known = collectiveName(c);
    if (known.size() == name.size() && strncasecmp(known.data(), name.data(), name.size()) == 0) return &c;
  }
  return nullptr;
}

std::string plannedCollectiveNames() {
  std::string names;
  for (Collective c : kPlannedCollectives) names += (names.empty() ? "" : ", ") + std::string(collectiveName(c));
  return names;
}

const char* collectiveName(Collective collective) {
  switch (collective) {
    case Collective::AllReduce: return "AllReduce";
    case Collective::ReduceScatter: return "ReduceScatter";
    case Collective::AllGather: return "AllGather";
    case Collective::Broadcast: return "Broadcast";
    case Collective::Reduce: return "Reduce";
    case Collective::Send: return "Send";
    case Collective::Recv: return "Recv";
    case Collective::AllToAll: return "AllToAll";
    case Collective::Gather: return "Gather";
    case Collective::Scatter: return "Scatter";
  }
  return "?";
}

bool collectiveHasRoot(Collective collective) {
  return collective == Collective::Broadcast || collective == Collective::Reduce || collective == Collective::Gather ||
         collective == Collective::Scatter;
}

bool collectiveReduces(Collective collective) {
  return collective == Collective::AllReduce || collective == Collective::ReduceScatter ||
         collective == Collective::Reduce;
}

const char* algorithmName(Algorithm algorithm) { return algorithmEntry(algorithm).name; }

const char* stepOpName(StepOp op) {
  switch (op) {
    case StepOp::Send: return "send";
    case StepOp::Recv: return "recv";
    case StepOp::RecvSend: return "recvSend";
    case StepOp::RecvReduceSend: return "recvReduceSend";
    case StepOp::RecvReduceCopy: return "recvReduceCopy";
    case StepOp::RecvReduceCopySend: return "recvReduceCopySend";
    case StepOp::Copy: return "copy";
    case StepOp::LocalReduce: return "localReduce";
    case StepOp::Notify: return "notify";
    case StepOp::Await: return "await";
  }
  return "?";
}

static std::string chunkText(const ChunkRef& ref) {
  if (ref.buffer == BufferId::None) return "-";
  const char* name = ref.buffer == BufferId::Input ? "in" : ref.buffer == BufferId::Output ? "out" : "scratch";
  return format("%s[%d]", name, ref.chunk);
}

void Plan::addChannel(const std::vector<Step>& channelSteps) {
  steps.insert(steps.end(), channelSteps.begin(), channelSteps.end());
  channelStart.push_back(static_cast<uint32_t>(steps.size()));
}

std::string Plan::describe(int c) const {
  std::string out = format("%s/%s rank %d channel %d:", collectiveName(collective), algorithmName(algorithm), rank, c);
  for (const Step& step : channel(c)) {
    if (step.flags & kStartsPass) out += " | every slice, then:";
    out += format(" %s(", stepOpName(step.op));
    if (stepReceives(step.op))
      out +=
          stepFansIn(step) ? format("from %d,%d ", step.recvPeer, step.recvPeer2) : format("from %d ", step.recvPeer);
    out += chunkText(step.src);
    if (step.op == StepOp::LocalReduce) out += "," + chunkText(step.src2);
    out += "->" + chunkText(step.dst);
    if (stepSends(step.op)) out += format(" to %d", step.sendPeer);
    if (stepIsToken(step.op)) out += step.onLastSlice ? " last slice" : " first slice";
    if (step.flags & kMayPublishAddress) out += " by-address";
    if (step.flags & kMayPublishOutOfPlace) out += " by-address-out-of-place";
    out += step.final ? " final)" : ")";
  }
  return out;
}

RingOrder identityRing(int nranks) {
  RingOrder ring(static_cast<size_t>(nranks));
  for (int i = 0; i < nranks; ++i) ring[i] = i;
  return ring;
}

std::vector<RingOrder> channelRings(const RingOrder& ring, const std::vector<int>& nodeOfRank, int maxRings) {
  // The ring's stretches of one node: [start, end) positions.
  std::vector<std::pair<size_t, size_t>> stretches;
  auto nodeAt = [&](size_t i) { return nodeOfRank.size() == ring.size() ? nodeOfRank[ring[i]] : 0; };
  for (size_t i = 0; i < ring.size(); ++i) {
    if (i == 0 || nodeAt(i) != nodeAt(i - 1))
      stretches.push_back({i, i + 1});
    else
      stretches.back().second = i + 1;
  }
  // Rotations: as many as the shortest stretch has ranks; none on one node
  // (a node's ring is a cycle already: rotating it changes nothing).
  size_t rotations = 1;
  if (stretches.size() > 1) {
    rotations = ring.size();
    for (auto [start, end] : stretches) rotations = std::min(rotations, end - start);
  }
  rotations = std::max<size_t>(1, std::min(rotations, static_cast<size_t>(std::max(1, maxRings / 2))));
  std::vector<RingOrder> rings;
  for (size_t k = 0; k < rotations; ++k) {
    RingOrder rotated = ring;
    for (auto [start, end] : stretches)
      std::rotate(rotated.begin() + static_cast<std::ptrdiff_t>(start),
                  rotated.begin() + static_cast<std::ptrdiff_t>(start + k % (end - start)),
                  rotated.begin() + static_cast<std::ptrdiff_t>(end));
    rings.push_back(rotated);
    rings.push_back(RingOrder(rotated.rbegin(), rotated.rend()));
  }
  rings.resize(std::min(rings.size(), static_cast<size_t>(std::max(1, maxRings))));
  return rings;
}

}  // namespace weft
