// Shared by the libFuzzer harnesses: a loopback listener made once per
// process, and a connection to it that delivers the fuzzer's bytes.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdio>
#include <cstdint>
#include <cstdlib>

#include "core/clock.h"
#include "core/socket.h"

namespace weft::fuzz {

inline SocketAddress loopback() {
  Result<SocketAddress> address = parseSocketAddress("127.0.0.1:0");
  if (!address.isOk()) abort();
  return address.value();
}

// Connects to address and writes data, then half-closes: the reader sees
// the bytes and then the end of the stream, as from a stray that gives up.
inline void sendAndHalfClose(const SocketAddress& address, const uint8_t* data, size_t size) {
  Result<Socket> sock = Socket::connect(address, monotonicNanos() + 1000000000ull, nullptr);
  if (!sock.isOk()) {
    fprintf(stderr, "fuzz harness: cannot connect to %s: %s\n", address.toString().c_str(),
            sock.status().message().c_str());
    abort();
  }
  // Closed with a reset, not a FIN: hundreds of thousands of connections
  // would otherwise use up the ephemeral ports in TIME_WAIT.
  linger hard{1, 0};
  setsockopt(sock.value().fd(), SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
  if (size > 0) (void)sock.value().sendAll(data, size, monotonicNanos() + 1000000000ull, nullptr);
  shutdown(sock.value().fd(), SHUT_WR);
  // Kept open until the acceptor has dealt with it (the caller's scope).
  static Socket keep;
  keep = sock.take();
}

}  // namespace weft::fuzz
