// The hello every accepting side reads (bootstrap root, bootstrap peers,
// liveness service): whatever bytes a stranger sends, the acceptor drops the
// connection (it cannot know the job secret) and never crashes. The first
// byte picks the acceptor's kind; the rest goes on the wire. The same bytes
// are also decoded as a unique id (what a user hands weftCommInitRank).
#include <cstring>

#include "bootstrap/handshake.h"
#include "bootstrap/unique_id.h"
#include "fuzz_common.h"
#include "weft/weft.h"

using namespace weft;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static JobSecret secret = [] {
    JobSecret s{};
    for (size_t i = 0; i < sizeof(s); ++i) reinterpret_cast<uint8_t*>(&s)[i] = static_cast<uint8_t>(i * 37 + 11);
    return s;
  }();
  static SocketAddress bound;
  static Socket listener = [] {
    Result<Socket> l = Socket::listen(fuzz::loopback(), &bound);
    if (!l.isOk()) abort();
    return l.take();
  }();

  weftUniqueId id;
  memset(&id, 0, sizeof(id));
  memcpy(&id, data, size < sizeof(id) ? size : sizeof(id));
  (void)decodeUniqueId(id);

  if (size == 0) return 0;
  HelloKind kind = static_cast<HelloKind>(1 + data[0] % 3);
  HelloAcceptor acceptor(&listener, secret, kind, "fuzz");
  fuzz::sendAndHalfClose(bound, data + 1, size - 1);
  // The stray is read, judged and dropped within a few rounds.
  uint64_t until = monotonicNanos() + 200000000ull;
  while (acceptor.dropped() == 0 && monotonicNanos() < until) {
    acceptor.serve(monotonicNanos() + 1000000);
    AcceptedHello accepted;
    if (acceptor.takeReady(&accepted)) abort();  // a hello without the secret got through
  }
  return 0;
}
