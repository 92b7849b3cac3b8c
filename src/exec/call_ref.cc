#include "exec/call_ref.h"

#include "core/status.h"

namespace weft {

std::string describeCallRef(CallRef ref) {
  if (ref == kNoCall) return "none";
  auto collective = static_cast<Collective>((ref >> 56) - 1);
  int peer = static_cast<int>((ref >> 40) & 0xffff) - 1;
  auto seq = static_cast<unsigned long long>(callRefSeq(ref));
  if (collective == Collective::Send) return format("Send #%llu to rank %d", seq, peer);
  if (collective == Collective::Recv) return format("Recv #%llu from rank %d", seq, peer);
  return format("#%llu %s", seq, collectiveName(collective));
}

}  // namespace weft
