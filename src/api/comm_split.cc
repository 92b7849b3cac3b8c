// weftCommSplit and weftCommShrink: new communicators made from an existing
// one. The members of the new communicator are decided from what every one
// of them knows (split: an all-gather of colors and keys over the parent's
// bootstrap; shrink: the exclusion list, the same on every survivor), the
// first member makes a fresh unique id and hands it to the others over the
// parent's bootstrap, point to point, which works even when some ranks of
// the parent are dead, and the members initialise as for weftCommInitRank.
#include <algorithm>
#include <vector>

#include "api/comm.h"
#include "core/logging.h"

using namespace weft;

namespace {

constexpr uint32_t kChildTagBase = 0x40000000u;

// Every call takes the next tag on every rank of the parent that makes it,
// so two splits in a row cannot take each other's ids.
uint32_t nextChildTag(weftComm* comm) { return kChildTagBase | (comm->childCalls++ & 0x3fffffffu); }

// members[0] makes the id and sends it to the others; they receive it.
Status shareUniqueId(weftComm* comm, const std::vector<int>& members, uint32_t tag, weftUniqueId* id) {
  if (comm->rank == members[0]) {
    Result<weftUniqueId> fresh = freshUniqueId();
    if (!fresh.isOk()) return fresh.status();
    *id = fresh.value();
    for (size_t i = 1; i < members.size(); ++i) WEFT_CHECK(comm->bootstrap->send(members[i], tag, id, sizeof(*id)));
    return Status::ok();
  }
  return comm->bootstrap->recv(members[0], tag, id, sizeof(*id));
}

Status makeChild(weftComm* comm, const std::vector<int>& members, uint32_t tag, const weftConfig_t* config,
                 weftComm_t* newcomm, const char* call) {
  CommOptions options = comm->options;
  if (config != nullptr) {
    Result<CommOptions> resolved = resolveConfig(config);
    if (!resolved.isOk()) return resolved.status();
    options = resolved.value();
  }
  int newRank = static_cast<int>(std::find(members.begin(), members.end(), comm->rank) - members.begin());
  weftUniqueId id;
  Status shared = shareUniqueId(comm, members, tag, &id);
  if (!shared.isOk())
    return Status(shared.code(), format("rank %d: %s: the new communicator's id did not reach this rank from rank "
                                        "%d: %s",
                                        comm->rank, call, members[0], shared.message().c_str()));
  Status created = createComm(newcomm, static_cast<int>(members.size()), id, newRank, options);
  if (!created.isOk()) return created;
  WEFT_INFO(kLogInit, "rank %d: %s: rank %d of %zu in the new communicator", comm->rank, call, newRank, members.size());
  return Status::ok();
}

}  // namespace

extern "C" {

weftResult_t weftCommSplit(weftComm_t comm, int color, int key, weftComm_t* newcomm, const weftConfig_t* config) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  if (newcomm == nullptr)
    return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "rank %d: weftCommSplit: newcomm is NULL", comm->rank));
  *newcomm = nullptr;
  if (color < WEFT_SPLIT_NOCOLOR)
    return setLastError(
        comm, WEFT_ERROR(weftInvalidArgument, "rank %d: weftCommSplit: color=%d is negative (WEFT_SPLIT_NOCOLOR is -1)",
                         comm->rank, color));
  CommCall call(comm);
  if (!call.live()) return setLastError(nullptr, CommCall::abortingError());
  struct Choice {
    int32_t color, key;
  };
  std::vector<Choice> choices(static_cast<size_t>(comm->nranks));
  choices[comm->rank] = {color, key};
  Status gathered = comm->bootstrap->allGather(choices.data(), sizeof(Choice));
  if (!gathered.isOk())
    return setLastError(
        comm, Status(gathered.code(), format("rank %d: weftCommSplit: %s", comm->rank, gathered.message().c_str())));
  uint32_t tag = nextChildTag(comm);
  if (color == WEFT_SPLIT_NOCOLOR) return weftSuccess;
  std::vector<int> members;
  for (int r = 0; r < comm->nranks; ++r)
    if (choices[r].color == color) members.push_back(r);
  std::stable_sort(members.begin(), members.end(), [&](int a, int b) { return choices[a].key < choices[b].key; });
  return setLastError(comm, makeChild(comm, members, tag, config, newcomm, "weftCommSplit"));
}

weftResult_t weftCommShrink(weftComm_t comm, const int* excludeRanks, int excludeCount, weftComm_t* newcomm,
                            const weftConfig_t* config) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  if (newcomm == nullptr)
    return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "rank %d: weftCommShrink: newcomm is NULL", comm->rank));
  *newcomm = nullptr;
  if (excludeCount < 0 || (excludeCount > 0 && excludeRanks == nullptr))
    return setLastError(comm,
                        WEFT_ERROR(weftInvalidArgument, "rank %d: weftCommShrink: excludeRanks=%p with excludeCount=%d",
                                   comm->rank, static_cast<const void*>(excludeRanks), excludeCount));
  std::vector<bool> excluded(static_cast<size_t>(comm->nranks), false);
  for (int i = 0; i < excludeCount; ++i) {
    int r = excludeRanks[i];
    if (r < 0 || r >= comm->nranks)
      return setLastError(
          comm, WEFT_ERROR(weftInvalidArgument, "rank %d: weftCommShrink: excludeRanks[%d]=%d is outside [0, %d)",
                           comm->rank, i, r, comm->nranks));
    if (excluded[r])
      return setLastError(
          comm, WEFT_ERROR(weftInvalidArgument, "rank %d: weftCommShrink: rank %d is listed twice in excludeRanks",
                           comm->rank, r));
    excluded[r] = true;
  }
  if (excluded[comm->rank])
    return setLastError(comm, WEFT_ERROR(weftInvalidArgument,
                                         "rank %d: weftCommShrink: this rank is in excludeRanks; excluded ranks do "
                                         "not call weftCommShrink",
                                         comm->rank));
  CommCall call(comm);
  if (!call.live()) return setLastError(nullptr, CommCall::abortingError());
  std::vector<int> members;
  for (int r = 0; r < comm->nranks; ++r)
    if (!excluded[r]) members.push_back(r);
  return setLastError(comm, makeChild(comm, members, nextChildTag(comm), config, newcomm, "weftCommShrink"));
}

}  // extern "C"
