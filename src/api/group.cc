// Groups: calls between weftGroupStart and weftGroupEnd are held per thread
// and handed to each communicator's executor together at the outermost
// weftGroupEnd, where its sends and receives progress concurrently.
//
// A call refused inside a group (a bad argument) fails the whole group:
// weftGroupEnd returns that error and submits nothing. A group's calls are
// numbered (collectives per communicator, messages per peer and direction)
// only when the group is submitted, so a failed group leaves the numbering
// as if it had never been made and every rank's next call still matches its
// peers'; only the count that weftCommGetSeq reports is given back.
#include <algorithm>
#include <vector>

#include "api/comm.h"
#include "core/logging.h"
#include "core/types.h"

using namespace weft;

namespace {

// How many operations a communicator had posted before the group used it.
struct SavedPosted {
  weftComm* comm = nullptr;
  uint64_t posted = 0;
};

struct GroupState {
  int depth = 0;
  std::vector<std::pair<weftComm*, OpDesc>> pending;
  std::vector<SavedPosted> saved;
  Status error;  // the first call refused inside the group
  weftComm* errorComm = nullptr;
};
thread_local GroupState group;
thread_local bool postInBackground = false;  // see BackgroundPosting

void savePostedOnce(weftComm* comm) {
  for (const SavedPosted& saved : group.saved)
    if (saved.comm == comm) return;
  group.saved.push_back({comm, comm->posted});
}

// Collectives are numbered per communicator, messages per peer and
// direction, so that a mismatch names the call or the message.
void assignSequence(weftComm* comm, OpDesc& op) {
  if (op.collective == Collective::Send)
    op.opSeq = comm->sendCalls[op.peer]++;
  else if (op.collective == Collective::Recv)
    op.opSeq = comm->recvCalls[op.peer]++;
  else
    op.opSeq = comm->collectiveCalls++;
  if (!op.plan->concurrent)
    WEFT_TRACE(kLogColl, "rank %d: call #%llu %s count=%zu %s %s root=%d: %s plan, %d channel(s)", comm->rank,
               static_cast<unsigned long long>(op.opSeq), collectiveName(op.collective), op.count, typeName(op.type),
               redOpName(op.op), op.root, algorithmName(op.plan->algorithm), op.plan->nChannels);
  else
    WEFT_TRACE(kLogP2p, "rank %d: %s #%llu of count=%zu %s %s rank %d", comm->rank, collectiveName(op.collective),
               static_cast<unsigned long long>(op.opSeq), op.count, typeName(op.type),
               op.collective == Collective::Send ? "to" : "from", op.peer);
}

}  // namespace

namespace weft {

BackgroundPosting::BackgroundPosting() : previous_(postInBackground) { postInBackground = true; }
BackgroundPosting::~BackgroundPosting() { postInBackground = previous_; }

weftResult_t postOperation(weftComm* comm, OpDesc op) {
  CommCall call(comm);  // submission may run the call here, and block
  op.background = postInBackground;
  if (!call.live()) return rejectCall(nullptr, CommCall::abortingError());
  if (group.depth > 0) {
    savePostedOnce(comm);
    ++comm->posted;
    group.pending.emplace_back(comm, op);  // numbered when the group is submitted
    return weftSuccess;
  }
  ++comm->posted;
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
  std::vector<SavedPosted> saved;
  saved.swap(group.saved);
  Status error = group.error;
  weftComm* errorComm = group.errorComm;
  group.error = Status::ok();
  group.errorComm = nullptr;
  if (!error.isOk()) {
    // Nothing of the group runs, and nothing of it was numbered.
    for (const SavedPosted& counts : saved)
      if (isLiveComm(counts.comm)) counts.comm->posted = counts.posted;
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
        ops.push_back(entry.second);
        ops.back().lastInGroup = false;
      }
    if (!isLiveComm(comm)) {
      result = setLastError(
          nullptr,
          WEFT_ERROR(weftInvalidArgument, "a communicator used inside the group was destroyed before weftGroupEnd"));
      continue;
    }
    ops.back().lastInGroup = true;
    CommCall call(comm);
    if (!call.live()) {
      result = setLastError(nullptr, CommCall::abortingError());
      continue;
    }
    for (OpDesc& op : ops) assignSequence(comm, op);
    comm->executor->submit(ops.data(), ops.size());
  }
  return result;
}

}  // extern "C"
