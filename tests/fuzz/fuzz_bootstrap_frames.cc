// The bootstrap's message stream from a peer (tagged frames): any bytes give
// a message, an error, or a queued frame for a later receive; never a crash,
// never a read past what was asked for. The first bytes choose the tag and
// size the receive asks for.
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "core/clock.h"

using namespace weft;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  uint32_t tag = data[0] % 4;
  size_t want = data[1] * 8u + data[2] % 8u;
  data += 3;
  size -= 3;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) abort();
  Socket reader(fds[0]);
  // The whole input is written before reading (a socketpair buffers well
  // beyond the fuzzer's input sizes), then the end of the stream.
  size_t sent = 0;
  while (sent < size) {
    ssize_t n = ::send(fds[1], data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  ::close(fds[1]);
  std::vector<char> out(want + 1, 0x5a);
  Bootstrap::TaggedQueues others;
  size_t got = 0;
  Status status =
      Bootstrap::readTagged(reader, tag, out.data(), want, monotonicNanos() + 1000000000ull, nullptr, &others, &got);
  if (out[want] != 0x5a) abort();  // wrote past the receive's buffer
  if (status.isOk() && got == want) {
    // Read exactly: nothing queued under the tag that was asked for.
    if (others.count(tag) != 0) abort();
  }
  return 0;
}
