// Argument checks and posting for every collective and send/recv. An
// argument error is reported before anything is enqueued, so the
// communicator stays usable.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>

#include "api/comm.h"
#include "core/logging.h"
#include "core/types.h"

using namespace weft;

namespace {

Status checkComm(weftComm* comm) {
  WEFT_CHECK(checkLiveComm(comm));
  Status async = comm->executor->asyncError();
  if (!async.isOk())
    return Status(async.code(), format("rank %d: the communicator failed earlier and must be aborted: %s", comm->rank,
                                       async.message().c_str()));
  return Status::ok();
}

Status checkCommon(weftComm* comm, const char* call, weftDataType_t type, weftStream_t stream) {
  if (!validType(type))
    return WEFT_ERROR(weftInvalidArgument, "rank %d: %s: datatype %d is not a weftDataType_t", comm->rank, call,
                      static_cast<int>(type));
  if (comm->device) {
    Status usable = comm->device->checkStream(stream);
    if (!usable.isOk()) return WEFT_ERROR(usable.code(), "rank %d: %s: %s", comm->rank, call, usable.message().c_str());
    return Status::ok();
  }
  if (stream != nullptr)
    return WEFT_ERROR(weftInvalidArgument, "rank %d: %s: stream must be NULL for a host communicator (got %p)",
                      comm->rank, call, stream);
  return Status::ok();
}

// The PreMulSum op behind handle op, or null when op is not one of comm's.
const PreMulSumOp* preMulSumOf(weftComm* comm, weftRedOp_t op) {
  int index = static_cast<int>(op) - weftNumOps;
  if (index < 0 || index >= static_cast<int>(comm->preMulSums.size())) return nullptr;
  const PreMulSumOp& made = comm->preMulSums[static_cast<size_t>(index)];
  return made.live ? &made : nullptr;
}

Status checkOp(weftComm* comm, const char* call, weftRedOp_t op, weftDataType_t type) {
  if (validRedOp(op)) return Status::ok();
  const PreMulSumOp* made = preMulSumOf(comm, op);
  if (made == nullptr)
    return WEFT_ERROR(weftInvalidArgument,
                      "rank %d: %s: op %d is neither a weftRedOp_t nor a live op made by "
                      "weftRedOpCreatePreMulSum on this communicator",
                      comm->rank, call, static_cast<int>(op));
  if (made->type != type)
    return WEFT_ERROR(weftInvalidArgument, "rank %d: %s: op %d was made for %s, but the call's datatype is %s",
                      comm->rank, call, static_cast<int>(op), typeName(made->type), typeName(type));
  return Status::ok();
}

// A buffer of count elements (times multiplier for the larger side of
// all-gather and reduce-scatter): not NULL when non-empty, aligned to the
// element size, and with a byte size that fits in size_t.
Status checkBuffer(weftComm* comm, const char* call, const char* name, const void* buffer, size_t count,
                   size_t multiplier, weftDataType_t type) {
  size_t elementBytes = typeSize(type);  // a power of two: no division on this per-call path
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, multiplier, &bytes) || __builtin_mul_overflow(bytes, elementBytes, &bytes))
    return WEFT_ERROR(weftInvalidArgument, "rank %d: %s: %s of %zu x %zu elements of %s overflows size_t", comm->rank,
                      call, name, count, multiplier, typeName(type));
  if (count == 0) return Status::ok();
  if (buffer == nullptr)
    return WEFT_ERROR(weftInvalidArgument, "rank %d: %s: %s is NULL with count=%zu", comm->rank, call, name, count);
  if ((reinterpret_cast<uintptr_t>(buffer) & (elementBytes - 1)) != 0)
    return WEFT_ERROR(weftInvalidArgument, "rank %d: %s: %s=%p is not aligned to the %zu-byte size of %s", comm->rank,
                      call, name, buffer, elementBytes, typeName(type));
  // A device communicator's buffers are memory of its device.
  if (comm->device) {
    Status onDevice = comm->device->checkBuffer(buffer, bytes);
    if (!onDevice.isOk())
      return WEFT_ERROR(weftInvalidArgument, "rank %d: %s: %s: %s", comm->rank, call, name, onDevice.message().c_str());
  }
  return Status::ok();
}

Status checkRank(weftComm* comm, const char* call, const char* name, int value) {
  if (value < 0 || value >= comm->nranks)
    return WEFT_ERROR(weftInvalidArgument, "rank %d: %s: %s=%d is outside [0, %d)", comm->rank, call, name, value,
                      comm->nranks);
  return Status::ok();
}

weftResult_t postCollective(weftComm* comm, Collective collective, const void* send, void* recv, size_t count,
                            weftDataType_t type, weftRedOp_t op, int root, size_t bytesOnWire, weftStream_t stream) {
  OpDesc desc;
  desc.stream = stream;
  desc.collective = collective;
  desc.send = send;
  desc.recv = recv;
  desc.count = count;
  desc.type = type;
  desc.op = op;
  if (const PreMulSumOp* made = validRedOp(op) ? nullptr : preMulSumOf(comm, op)) {
    desc.op = weftSum;
    desc.preMulSum = true;
    desc.preMulScalar = made->scalar;
    desc.preMulScalarAt = made->scalarAt;
  }
  desc.root = root;
  Protocol protocol = Protocol::Simple;
  Result<const Plan*> plan = comm->tuner->plan(collective, bytesOnWire, root, &protocol);
  if (!plan.isOk()) return rejectCall(comm, plan.status());
  desc.plan = plan.value();
  desc.lowLatency = protocol == Protocol::LowLatency;
  return postOperation(comm, desc);
}

#define WEFT_RETURN_IF(comm, expr)                 \
  do {                                             \
    Status s_ = (expr);                            \
    if (!s_.isOk()) return rejectCall((comm), s_); \
  } while (0)

// weftSend and weftRecv: the same checks.
weftResult_t postPointToPoint(Collective direction, void* buffer, size_t count, weftDataType_t datatype, int peer,
                              weftComm_t comm, weftStream_t stream) {
  bool send = direction == Collective::Send;
  const char* call = send ? "weftSend" : "weftRecv";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  WEFT_RETURN_IF(comm, checkRank(comm, call, "peer", peer));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, send ? "sendbuff" : "recvbuff", buffer, count, 1, datatype));
  OpDesc desc;
  desc.collective = direction;
  if (send)
    desc.send = buffer;
  else
    desc.recv = buffer;
  desc.count = count;
  desc.type = datatype;
  desc.peer = peer;
  desc.stream = stream;
  desc.plan = comm->tuner->pointToPointPlan(direction, peer);
  return postOperation(comm, desc);
}

}  // namespace

extern "C" {

weftResult_t weftAllReduce(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, weftRedOp_t op,
                           weftComm_t comm, weftStream_t stream) {
  const char* call = "weftAllReduce";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  WEFT_RETURN_IF(comm, checkOp(comm, call, op, datatype));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "sendbuff", sendbuff, count, 1, datatype));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "recvbuff", recvbuff, count, 1, datatype));
  return postCollective(comm, Collective::AllReduce, sendbuff, recvbuff, count, datatype, op, -1,
                        count * typeSize(datatype), stream);
}

weftResult_t weftReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, weftDataType_t datatype,
                               weftRedOp_t op, weftComm_t comm, weftStream_t stream) {
  const char* call = "weftReduceScatter";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  WEFT_RETURN_IF(comm, checkOp(comm, call, op, datatype));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "sendbuff", sendbuff, recvcount, comm->nranks, datatype));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "recvbuff", recvbuff, recvcount, 1, datatype));
  return postCollective(comm, Collective::ReduceScatter, sendbuff, recvbuff, recvcount, datatype, op, -1,
                        recvcount * typeSize(datatype) * comm->nranks, stream);
}

weftResult_t weftAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, weftDataType_t datatype,
                           weftComm_t comm, weftStream_t stream) {
  const char* call = "weftAllGather";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "sendbuff", sendbuff, sendcount, 1, datatype));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "recvbuff", recvbuff, sendcount, comm->nranks, datatype));
  return postCollective(comm, Collective::AllGather, sendbuff, recvbuff, sendcount, datatype, weftSum, -1,
                        sendcount * typeSize(datatype) * comm->nranks, stream);
}

weftResult_t weftBroadcast(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, int root,
                           weftComm_t comm, weftStream_t stream) {
  const char* call = "weftBroadcast";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  WEFT_RETURN_IF(comm, checkRank(comm, call, "root", root));
  if (comm->rank == root) WEFT_RETURN_IF(comm, checkBuffer(comm, call, "sendbuff", sendbuff, count, 1, datatype));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "recvbuff", recvbuff, count, 1, datatype));
  return postCollective(comm, Collective::Broadcast, sendbuff, recvbuff, count, datatype, weftSum, root,
                        count * typeSize(datatype), stream);
}

weftResult_t weftReduce(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, weftRedOp_t op,
                        int root, weftComm_t comm, weftStream_t stream) {
  const char* call = "weftReduce";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  WEFT_RETURN_IF(comm, checkOp(comm, call, op, datatype));
  WEFT_RETURN_IF(comm, checkRank(comm, call, "root", root));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "sendbuff", sendbuff, count, 1, datatype));
  if (comm->rank == root) WEFT_RETURN_IF(comm, checkBuffer(comm, call, "recvbuff", recvbuff, count, 1, datatype));
  return postCollective(comm, Collective::Reduce, sendbuff, recvbuff, count, datatype, op, root,
                        count * typeSize(datatype), stream);
}

weftResult_t weftAllToAll(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, weftComm_t comm,
                          weftStream_t stream) {
  const char* call = "weftAllToAll";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "sendbuff", sendbuff, count, comm->nranks, datatype));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "recvbuff", recvbuff, count, comm->nranks, datatype));
  return postCollective(comm, Collective::AllToAll, sendbuff, recvbuff, count, datatype, weftSum, -1,
                        count * typeSize(datatype) * comm->nranks, stream);
}

weftResult_t weftAllToAllv(const void* sendbuff, const size_t* sendcounts, const size_t* sdispls, void* recvbuff,
                           const size_t* recvcounts, const size_t* rdispls, weftDataType_t datatype, weftComm_t comm,
                           weftStream_t stream) {
  const char* call = "weftAllToAllv";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  int n = comm->nranks;
  size_t elementBytes = typeSize(datatype);
  // Each side's extent [lo, hi) in elements over every non-empty block.
  struct Side {
    const char* name;
    const void* buffer;
    const size_t* counts;
    const size_t* displs;
    size_t lo = SIZE_MAX, hi = 0;
  } sides[2] = {{"sendbuff", sendbuff, sendcounts, sdispls}, {"recvbuff", recvbuff, recvcounts, rdispls}};
  for (Side& side : sides) {
    bool isSend = &side == &sides[0];
    if (side.counts == nullptr || side.displs == nullptr)
      return rejectCall(comm, WEFT_ERROR(weftInvalidArgument, "rank %d: %s: %s or %s is NULL", comm->rank, call,
                                         isSend ? "sendcounts" : "recvcounts", isSend ? "sdispls" : "rdispls"));
    for (int peer = 0; peer < n; ++peer) {
      size_t count = side.counts[peer], displ = side.displs[peer];
      if (count == 0) continue;
      if (displ > SIZE_MAX / elementBytes - count)
        return rejectCall(comm, WEFT_ERROR(weftInvalidArgument,
                                           "rank %d: %s: the block of %zu elements at displacement %zu for rank %d "
                                           "in %s overflows size_t",
                                           comm->rank, call, count, displ, peer, side.name));
      side.lo = std::min(side.lo, displ);
      side.hi = std::max(side.hi, displ + count);
    }
    if (side.hi > 0) WEFT_RETURN_IF(comm, checkBuffer(comm, call, side.name, side.buffer, side.hi, 1, datatype));
  }
  const char* sendBase = static_cast<const char*>(sendbuff);
  const char* recvBase = static_cast<const char*>(recvbuff);
  if (sides[0].hi > 0 && sides[1].hi > 0 &&
      sendBase + sides[0].lo * elementBytes < recvBase + sides[1].hi * elementBytes &&
      recvBase + sides[1].lo * elementBytes < sendBase + sides[0].hi * elementBytes)
    return rejectCall(comm, WEFT_ERROR(weftInvalidArgument,
                                       "rank %d: %s: the send and receive regions overlap; weftAllToAllv has no "
                                       "in-place form",
                                       comm->rank, call));
  // One message each way between every pair, empty ones included, so that a
  // count one rank sends and its peer does not expect is seen (the message
  // header carries the count) instead of leaving a receive waiting. One group:
  // every pair progresses at once.
  weftGroupStart();
  for (int peer = 0; peer < n; ++peer) {
    char* into = recvcounts[peer] == 0 ? nullptr : const_cast<char*>(recvBase) + rdispls[peer] * elementBytes;
    char* from = sendcounts[peer] == 0 ? nullptr : const_cast<char*>(sendBase) + sdispls[peer] * elementBytes;
    postPointToPoint(Collective::Recv, into, recvcounts[peer], datatype, peer, comm, stream);
    postPointToPoint(Collective::Send, from, sendcounts[peer], datatype, peer, comm, stream);
  }
  return weftGroupEnd();
}

weftResult_t weftGather(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, int root,
                        weftComm_t comm, weftStream_t stream) {
  const char* call = "weftGather";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  WEFT_RETURN_IF(comm, checkRank(comm, call, "root", root));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "sendbuff", sendbuff, count, 1, datatype));
  if (comm->rank == root)
    WEFT_RETURN_IF(comm, checkBuffer(comm, call, "recvbuff", recvbuff, count, comm->nranks, datatype));
  return postCollective(comm, Collective::Gather, sendbuff, recvbuff, count, datatype, weftSum, root,
                        count * typeSize(datatype) * comm->nranks, stream);
}

weftResult_t weftScatter(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, int root,
                         weftComm_t comm, weftStream_t stream) {
  const char* call = "weftScatter";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, stream));
  WEFT_RETURN_IF(comm, checkRank(comm, call, "root", root));
  if (comm->rank == root)
    WEFT_RETURN_IF(comm, checkBuffer(comm, call, "sendbuff", sendbuff, count, comm->nranks, datatype));
  WEFT_RETURN_IF(comm, checkBuffer(comm, call, "recvbuff", recvbuff, count, 1, datatype));
  return postCollective(comm, Collective::Scatter, sendbuff, recvbuff, count, datatype, weftSum, root,
                        count * typeSize(datatype) * comm->nranks, stream);
}

weftResult_t weftRedOpCreatePreMulSum(weftRedOp_t* op, void* scalar, weftDataType_t datatype,
                                      weftScalarResidence_t residence, weftComm_t comm) {
  const char* call = "weftRedOpCreatePreMulSum";
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  WEFT_RETURN_IF(comm, checkCommon(comm, call, datatype, nullptr));
  if (op == nullptr || scalar == nullptr)
    return rejectCall(comm, WEFT_ERROR(weftInvalidArgument, "rank %d: %s: %s is NULL", comm->rank, call,
                                       op == nullptr ? "op" : "scalar"));
  if (residence != weftScalarDevice && residence != weftScalarHostImmediate)
    return rejectCall(comm, WEFT_ERROR(weftInvalidArgument,
                                       "rank %d: %s: residence %d is neither weftScalarDevice nor "
                                       "weftScalarHostImmediate",
                                       comm->rank, call, static_cast<int>(residence)));
  PreMulSumOp made;
  made.live = true;
  made.type = datatype;
  if (residence == weftScalarHostImmediate)
    memcpy(&made.scalar, scalar, typeSize(datatype));
  else
    made.scalarAt = scalar;
  // A destroyed op's slot is reused; handles stay below INT_MAX.
  size_t index = 0;
  while (index < comm->preMulSums.size() && comm->preMulSums[index].live) ++index;
  if (index == comm->preMulSums.size()) {
    if (index >= static_cast<size_t>(INT32_MAX - weftNumOps))
      return rejectCall(comm, WEFT_ERROR(weftInternalError, "rank %d: %s: too many ops", comm->rank, call));
    comm->preMulSums.push_back(made);
  } else {
    comm->preMulSums[index] = made;
  }
  *op = static_cast<weftRedOp_t>(weftNumOps + static_cast<int>(index));
  return weftSuccess;
}

weftResult_t weftRedOpDestroy(weftRedOp_t op, weftComm_t comm) {
  WEFT_RETURN_IF(nullptr, checkComm(comm));
  if (preMulSumOf(comm, op) == nullptr)
    return rejectCall(comm, WEFT_ERROR(weftInvalidArgument,
                                       "rank %d: weftRedOpDestroy: op %d is not a live op made by "
                                       "weftRedOpCreatePreMulSum on this communicator",
                                       comm->rank, static_cast<int>(op)));
  // Operations already posted carry their own copy of the scalar (or of its
  // address), so destroying the op does not change them.
  comm->preMulSums[static_cast<size_t>(op - weftNumOps)].live = false;
  return weftSuccess;
}

weftResult_t weftSend(const void* sendbuff, size_t count, weftDataType_t datatype, int peer, weftComm_t comm,
                      weftStream_t stream) {
  return postPointToPoint(Collective::Send, const_cast<void*>(sendbuff), count, datatype, peer, comm, stream);
}

weftResult_t weftRecv(void* recvbuff, size_t count, weftDataType_t datatype, int peer, weftComm_t comm,
                      weftStream_t stream) {
  return postPointToPoint(Collective::Recv, recvbuff, count, datatype, peer, comm, stream);
}

}  // extern "C"
