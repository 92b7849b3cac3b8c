#include "exec/call_match.h"

#include "core/logging.h"
#include "core/types.h"

namespace weft {
namespace {

// The slot header's op for a PreMulSum (a sum after scaling): told apart
// from a plain sum, so that ranks that disagree fail.
constexpr int kPreMulSumRedop = 0x40;
}  // namespace

int wireOp(const OpDesc& op) { return op.preMulSum ? kPreMulSumRedop : op.op; }
const char* headerOpName(int op) {
  return op == kPreMulSumRedop ? "premulsum" : redOpName(static_cast<weftRedOp_t>(op));
}

SlotHeader slotHeaderFor(const OpDesc& op, size_t bytes) {
  SlotHeader header{};
  header.magic = kSlotMagic;
  header.collective = static_cast<uint8_t>(op.collective == Collective::Recv ? Collective::Send : op.collective);
  header.datatype = static_cast<uint8_t>(op.type);
  header.redop = static_cast<uint8_t>(wireOp(op));
  header.algorithm = op.plan ? static_cast<uint8_t>(op.plan->algorithm) : 0;
  header.root = op.root;
  header.bytes = static_cast<uint32_t>(bytes);
  header.count = op.count;
  header.opSeq = op.opSeq;
  header.address = 0;
  return header;
}

namespace {

std::string describeCall(Collective collective, size_t count, int type, int op, int root, uint64_t opSeq) {
  if (collective == Collective::Send || collective == Collective::Recv)
    return format("%s(count=%zu, %s) message #%llu between the two", collectiveName(collective), count,
                  typeName(static_cast<weftDataType_t>(type)), static_cast<unsigned long long>(opSeq));
  bool reduces = collectiveReduces(collective);
  return format("%s(count=%zu, %s%s%s, root=%d) call #%llu", collectiveName(collective), count,
                typeName(static_cast<weftDataType_t>(type)), reduces ? ", " : "", reduces ? headerOpName(op) : "", root,
                static_cast<unsigned long long>(opSeq));
}

}  // namespace

// What a slot from peer must look like for this rank's operation.
Status checkSlotHeader(const SlotHeader& got, const OpDesc& op, size_t bytes, int rank, int peer) {
  SlotHeader want = slotHeaderFor(op, bytes);
  bool sameCall = got.magic == want.magic && got.collective == want.collective && got.datatype == want.datatype &&
                  got.count == want.count && got.opSeq == want.opSeq;
  if (collectiveReduces(op.collective)) sameCall = sameCall && got.redop == want.redop;
  if (collectiveHasRoot(op.collective)) sameCall = sameCall && got.root == want.root;
  if (op.plan) sameCall = sameCall && got.algorithm == want.algorithm;
  if (sameCall && got.bytes == want.bytes) return Status::ok();
  if (got.magic != kSlotMagic) return WEFT_ERROR(weftInternalError, "rank %d: corrupt slot from rank %d", rank, peer);
  if (sameCall)  // one call, sliced differently
    return WEFT_ERROR(weftInvalidUsage,
                      "rank %d: rank %d cuts the same call into other pieces (a message of %u bytes where this rank "
                      "expects %zu): every rank must use the same WEFT_BUFFSIZE and WEFT_CMA_SLICE",
                      rank, peer, got.bytes, bytes);
  return WEFT_ERROR(
      weftInvalidUsage,
      "rank %d: mismatched calls: rank %d is in %s but this rank is in %s; every "
      "rank must make the same collective calls in the same order (and matching "
      "send/recv counts)",
      rank, peer,
      describeCall(static_cast<Collective>(got.collective), got.count, got.datatype, got.redop, got.root, got.opSeq)
          .c_str(),
      describeCall(op.collective, op.count, op.type, want.redop, op.root, op.opSeq).c_str());
}

Status pairSelfMessages(const std::vector<const OpDesc*>& sends, const std::vector<const OpDesc*>& recvs, int rank,
                        std::vector<SelfCopy>* copies) {
  if (sends.size() != recvs.size())
    return WEFT_ERROR(weftInvalidUsage, "rank %d: a group has %zu sends to itself but %zu receives from itself", rank,
                      sends.size(), recvs.size());
  for (size_t i = 0; i < sends.size(); ++i) {
    size_t sendBytes = sends[i]->count * typeSize(sends[i]->type);
    size_t recvBytes = recvs[i]->count * typeSize(recvs[i]->type);
    if (sendBytes != recvBytes)
      return WEFT_ERROR(weftInvalidUsage, "rank %d: send to itself of %zu bytes matched a receive of %zu bytes", rank,
                        sendBytes, recvBytes);
    if (sendBytes > 0) copies->push_back({sends[i]->send, recvs[i]->recv, sendBytes});
  }
  return Status::ok();
}

}  // namespace weft
