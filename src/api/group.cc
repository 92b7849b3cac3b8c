// Groups: calls between weftGroupStart and weftGroupEnd are held per thread
// and handed to each communicator's executor together at the outermost
// weftGroupEnd, where its sends and receives progress concurrently.
//
// A call refused inside a group (a bad argument) fails the whole group:
// weftGroupEnd returns that error and submits nothing, and the sequence
// numbers the group's accepted calls took are given back, so every rank's
// next call still matches its peers' as if the group had never been made.
#include <algorithm>
#include <vector>

#include "api/comm.h"
#include "core/logging.h"
#include "core/types.h"

using namespace weft;

namespace {

// A communicator's sequence counters as they were before the group used it.
struct SavedCounters {
  weftComm* comm = nullptr;
  uint64_t posted = 0;
  uint64_t collectiveCalls = 0;
  std::vector<uint64_t> sendCalls, recvCalls;
};

struct GroupState {
  int depth = 0;
  std::vector<std::pair<weftComm*, OpDesc>> pending;
  std::vector<SavedCounters> saved;
  Status error;  // the first call refused inside the group
  weftComm* errorComm = nullptr;
};
thread_local GroupState group;

void saveCountersOnce(weftComm* comm) {
  for (const SavedCounters& saved : group.saved)
    if (saved.comm == comm) return;
  group.saved.push_back({comm, comm->posted, comm->collectiveCalls, comm->sendCalls, comm->recvCalls});
}

// Collectives are numbered per communicator, messages per peer and
// direction, so that a mismatch names the call or the message.
void assignSequence(weftComm* comm, OpDesc& op) {
  ++comm->posted;
  if (op.collective == Collective::Send) op.opSeq = comm->sendCalls[op.peer]++;
  else if (op.collective == Collective::Recv) op.opSeq = comm->recvCalls[op.peer]++;
  else op.opSeq = comm->collectiveCalls++;
  if (op.plan != nullptr)
    WEFT_TRACE(kLogColl, "rank %d: call #%llu %s count=%zu %s %s root=%d: %s plan, %d channel(s)", comm->rank,
               static_cast<unsigned long long>(op.opSeq), collectiveName(op.collective), op.count,
               typeName(op.type), redOpName(op.op), op.root, algorithmName(op.plan->algorithm),
               op.plan->nChannels);
  else
    WEFT_TRACE(kLogP2p, "rank %d: %s #%llu of count=%zu %s %s rank %d", comm->rank, collectiveName(op.collective),
               static_cast<unsigned long long>(op.opSeq), op.count, typeName(op.type),
               op.collective == Collective::Send ? "to" : "from", op.peer);
}

}  // namespace

namespace weft {

weftResult_t postOperation(weftComm* comm, OpDesc op) {
  CommCall call(comm);  // submission may run the call here, and block
  if (!call.live()) return rejectCall(nullptr, CommCall::abortingError());
  if (group.depth > 0) {
    saveCountersOnce(comm);
    assignSequence(comm, op);
    group.pending.emplace_back(comm, std::move(op));
    return weftSuccess;
  }
  assignSequence(comm, op);
  op.lastInGroup = true;
  comm->executor->submit(&op, 1);
  return weftSuccess;
}

weftResult_t rejectCall(weftComm* comm, const Status& status) {
  if (group.depth > 0 && group.error.isOk()) {
    group.error = status;
    group.errorComm = comm;
  }
  return setLastError(comm, status);
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
  std::vector<std::pair<weftComm*, OpDesc>> pending;
  pending.swap(group.pending);
  std::vector<SavedCounters> saved;
  saved.swap(group.saved);
  Status error = group.error;
  weftComm* errorComm = group.errorComm;
  group.error = Status::ok();
  group.errorComm = nullptr;
  if (!error.isOk()) {
    // Nothing of the group runs; the counters go back to where they were.
    for (SavedCounters& counters : saved) {
      if (!isLiveComm(counters.comm)) continue;
      counters.comm->posted = counters.posted;
      counters.comm->collectiveCalls = counters.collectiveCalls;
      counters.comm->sendCalls = std::move(counters.sendCalls);
      counters.comm->recvCalls = std::move(counters.recvCalls);
    }
    Status groupError(error.code(), format("weftGroupEnd: none of the group's %zu accepted operation(s) were "
                                           "submitted, because a call inside the group was refused: %s",
                                           pending.size(), error.message().c_str()));
    return setLastError(isLiveComm(errorComm) ? errorComm : nullptr, groupError);
  }
  // Per communicator, in posting order.
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
