// A call named in 64 bits, so that it can be published with one atomic
// store (in the executor and in the node's shared memory) and read by
// another thread, another process, or over the liveness service:
// collective+1 in bits 56..63 (0: none), peer+1 of a send/recv in bits
// 40..55, the call's sequence number in bits 0..39.
#pragma once

#include <cstdint>
#include <string>

#include "algorithms/plan.h"

namespace weft {

using CallRef = uint64_t;
constexpr CallRef kNoCall = 0;

inline CallRef makeCallRef(Collective collective, int peer, uint64_t opSeq) {
  return (static_cast<uint64_t>(static_cast<uint8_t>(collective) + 1) << 56) |
         (static_cast<uint64_t>(static_cast<uint16_t>(peer + 1)) << 40) | (opSeq & ((1ull << 40) - 1));
}

// "#41 AllReduce", "Send #3 to rank 1", or "none" for kNoCall.
std::string describeCallRef(CallRef ref);
// The sequence number alone (collectives: the call's index), for grouping
// ranks that wait in the same call.
inline uint64_t callRefSeq(CallRef ref) { return ref & ((1ull << 40) - 1); }

}  // namespace weft
