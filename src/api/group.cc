// Groups: calls between weftGroupStart and weftGroupEnd are held per thread
// and handed to each communicator's executor together at the outermost
// weftGroupEnd, where its sends and receives progress concurrently.
#include <algorithm>
#include <vector>

#include "api/comm.h"

using namespace weft;

namespace {
struct GroupState {
  int depth = 0;
  std::vector<std::pair<weftComm*, OpDesc>> pending;
};
thread_local GroupState group;
}  // namespace

namespace weft {

weftResult_t postOperation(weftComm* comm, OpDesc op) {
  CommCall call(comm);  // submission may run the call here, and block
  if (!call.live()) return setLastError(nullptr, CommCall::abortingError());
  ++comm->posted;
  if (group.depth > 0) {
    group.pending.emplace_back(comm, std::move(op));
    return weftSuccess;
  }
  op.lastInGroup = true;
  comm->executor->submit(&op, 1);
  return weftSuccess;
}

}  // namespace weft

extern "C" {

weftResult_t weftGroupStart(void) {
  ++group.depth;
  return weftSuccess;
}

weftResult_t weftGroupEnd(void) {
  if (group.depth == 0)
    return setLastError(nullptr, WEFT_ERROR(weftInvalidUsage, "weftGroupEnd without a matching weftGroupStart"));
  if (--group.depth > 0) return weftSuccess;
  // Per communicator, in posting order.
  std::vector<std::pair<weftComm*, OpDesc>> pending;
  pending.swap(group.pending);
  std::vector<weftComm*> comms;
  for (auto& entry : pending)
    if (std::find(comms.begin(), comms.end(), entry.first) == comms.end()) comms.push_back(entry.first);
  weftResult_t result = weftSuccess;
  for (weftComm* comm : comms) {
    std::vector<OpDesc> ops;
    for (auto& entry : pending)
      if (entry.first == comm) {
        ops.push_back(std::move(entry.second));
        ops.back().lastInGroup = false;
      }
    if (!isLiveComm(comm)) {
      result = setLastError(nullptr, WEFT_ERROR(weftInvalidArgument,
                                                "a communicator used inside the group was destroyed before weftGroupEnd"));
      continue;
    }
    ops.back().lastInGroup = true;
    CommCall call(comm);
    if (!call.live()) {
      result = setLastError(nullptr, CommCall::abortingError());
      continue;
    }
    comm->executor->submit(ops.data(), ops.size());
  }
  return result;
}

}  // extern "C"
