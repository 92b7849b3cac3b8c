// Call matching: every slot carries a description of the call it belongs to
// (transports/connector.h's SlotHeader), and a receiver checks it against
// its own call before it uses the payload, so ranks that disagree about a
// call (collective, type, op, count, root, algorithm, or its place in the
// order of calls) fail with an error that names both calls instead of
// combining data that does not belong together. Every executor uses these.
#pragma once

#include <cstddef>
#include <vector>

#include "core/status.h"
#include "exec/op_desc.h"
#include "transports/connector.h"

namespace weft {

// The op code a slot header carries: weftRedOp_t, or a code of its own for a
// PreMulSum (a sum after scaling), so that ranks that disagree fail.
int wireOp(const OpDesc& op);
// "sum", "premulsum", ...: an op code as wireOp gives it.
const char* headerOpName(int op);
// The header of a slot of `bytes` payload bytes sent for op.
SlotHeader slotHeaderFor(const OpDesc& op, size_t bytes);
// Whether a slot from peer belongs to this rank's op (a slot of `bytes`
// bytes); a mismatch is weftInvalidUsage naming both calls.
Status checkSlotHeader(const SlotHeader& got, const OpDesc& op, size_t bytes, int rank, int peer);

// A group's messages to itself pair up in posting order (the i-th send with
// the i-th receive) and are plain copies. The copies to make (none for an
// empty message), or weftInvalidUsage when the numbers or sizes differ.
struct SelfCopy {
  const void* src;
  void* dst;
  size_t bytes;
};
Status pairSelfMessages(const std::vector<const OpDesc*>& sends, const std::vector<const OpDesc*>& recvs, int rank,
                        std::vector<SelfCopy>* copies);

}  // namespace weft
