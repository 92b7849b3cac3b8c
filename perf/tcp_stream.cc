// The network's own figures between two ranks, to set weft's beside: one
// TCP connection, no library. Started like the perf binaries outside mpirun
// (WEFT_RANK 0 or 1, WEFT_NRANKS=2, WEFT_COMM_ID=ip:port of rank 0's node;
// it uses the next port), so it runs between the same two namespaces.
//
//   stream:      rank 0 sends -b bytes per message, -n messages, rank 1
//                receives; GB/s at the receiver (blocking calls, as iperf)
//   round trip:  8-byte ping-pong, -r times: busy-polling non-blocking
//                receives, then blocking receives
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void die(const char* what) {
  fprintf(stderr, "tcp_stream: %s: %s\n", what, strerror(errno));
  exit(1);
}

bool moveAll(int fd, char* data, size_t bytes, bool send, bool spin) {
  while (bytes > 0) {
    ssize_t n = send ? ::send(fd, data, bytes, MSG_NOSIGNAL) : ::recv(fd, data, bytes, spin ? MSG_DONTWAIT : 0);
    if (n > 0) {
      data += n;
      bytes -= static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  size_t bytes = 64u << 20;
  int messages = 20, trips = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "-b"))
      bytes = strtoull(argv[i + 1], nullptr, 10);
    else if (!strcmp(argv[i], "-n"))
      messages = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "-r"))
      trips = atoi(argv[i + 1]);
  }
  const char* rankText = getenv("WEFT_RANK");
  const char* id = getenv("WEFT_COMM_ID");
  if (rankText == nullptr || id == nullptr) {
    fprintf(stderr, "usage: WEFT_RANK=0|1 WEFT_COMM_ID=ip:port %s [-b bytes] [-n messages] [-r round trips]\n",
            argv[0]);
    return 2;
  }
  int rank = atoi(rankText);
  std::string text = id;
  size_t colon = text.rfind(':');
  std::string host = text.substr(0, colon);
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string port = std::to_string(atoi(text.c_str() + colon + 1) + 1);
  addrinfo hints{}, *address = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &address) != 0) die("getaddrinfo");
  int fd = -1;
  if (rank == 0) {
    int listener = socket(address->ai_family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(listener, address->ai_addr, address->ai_addrlen) != 0) die("bind");
    listen(listener, 1);
    fd = accept(listener, nullptr, nullptr);
    close(listener);
  } else {
    for (int attempt = 0; attempt < 200 && fd < 0; ++attempt) {
      fd = socket(address->ai_family, SOCK_STREAM, 0);
      if (connect(fd, address->ai_addr, address->ai_addrlen) != 0) {
        close(fd);
        fd = -1;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
  if (fd < 0) die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::vector<char> buffer(bytes, 1);
  char ping[8] = {0};

  // Stream, one warm-up message first.
  double start = 0;
  for (int m = 0; m <= messages; ++m) {
    if (m == 1) start = now();
    if (!moveAll(fd, buffer.data(), bytes, rank == 0, false)) die("stream");
  }
  // The receiver's clock ends when the last byte is in; it tells the sender.
  double seconds = now() - start;
  if (!moveAll(fd, reinterpret_cast<char*>(&seconds), sizeof(seconds), rank == 1, false)) die("stream result");
  double streamGBs = static_cast<double>(bytes) * messages / seconds / 1e9;

  double rtt[2];
  for (int spin = 1; spin >= 0; --spin) {
    for (int t = 0; t < trips + 100; ++t) {
      if (t == 100) start = now();
      bool ok = rank == 0 ? moveAll(fd, ping, 8, true, false) && moveAll(fd, ping, 8, false, spin)
                          : moveAll(fd, ping, 8, false, spin) && moveAll(fd, ping, 8, true, false);
      if (!ok) die("round trip");
    }
    rtt[spin] = (now() - start) / trips * 1e6;
  }
  if (rank == 0)
    printf(
        "# tcp_stream: one TCP connection to %s: stream %zu B x %d: %.3f GB/s; 8 B round trip %.2f us "
        "busy-polling, %.2f us blocking\n",
        host.c_str(), bytes, messages, streamGBs, rtt[1], rtt[0]);
  close(fd);
  freeaddrinfo(address);
  return 0;
}
