// A fixed one-way delay for the test hosts' long links, where the kernel has
// no netem: a TUN device that the namespace routes the far site's addresses
// through. Every IPv4 packet read from it is held for the delay, then sent on
// as it is through a raw socket whose mark selects a routing table that
// reaches the far site directly (set up by scripts/netns.sh wan). Packets
// leave in the order they came, so TCP sees a longer round trip and nothing
// else; a rate limit, if any, goes on the TUN device's own queue (before the
// delay, as on a real link).
//
//   weft_delay_line DEV DELAY_US MARK [MTU]
//
// Creates DEV (gone when the process exits), brings it up with MTU (default
// 1500), prints "ready" once it forwards, runs until SIGTERM or SIGINT, and
// then prints what it carried.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t stopping = 0;

void onSignal(int) { stopping = 1; }

int64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "weft_delay_line: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

struct Held {
  int64_t due;
  std::vector<uint8_t> bytes;
};

int openTun(const std::string& name, int mtu) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name.c_str());
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  int ctl = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ctl < 0) die("socket");
  ifr.ifr_mtu = mtu;
  if (ioctl(ctl, SIOCSIFMTU, &ifr) < 0) die("SIOCSIFMTU");
  if (ioctl(ctl, SIOCGIFFLAGS, &ifr) < 0) die("SIOCGIFFLAGS");
  ifr.ifr_flags = short(ifr.ifr_flags | IFF_UP);
  if (ioctl(ctl, SIOCSIFFLAGS, &ifr) < 0) die("SIOCSIFFLAGS");
  close(ctl);
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: %s DEV DELAY_US MARK [MTU]\n", argv[0]);
    return 2;
  }
  const std::string dev = argv[1];
  const int64_t delayNs = std::strtoll(argv[2], nullptr, 10) * 1000;
  const auto mark = uint32_t(std::strtoul(argv[3], nullptr, 0));
  const int mtu = argc == 5 ? std::atoi(argv[4]) : 1500;
  if (delayNs < 0 || mtu < 576 || mtu > 65535) {
    std::fprintf(stderr, "weft_delay_line: bad delay or MTU\n");
    return 2;
  }
  // Sleep to the microsecond, not the default 50 µs of timer slack, and take
  // a core the moment a packet is due: the ranks beside it spin on every
  // core, and a delay line that waits its turn behind them would add the
  // scheduler's milliseconds to the link's delay. It sleeps between packets,
  // so the real-time class costs the others little.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  sched_param sp{};
  sp.sched_priority = 10;
  if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
    std::fprintf(stderr, "weft_delay_line: no real-time priority (%s): the delay may jitter\n", std::strerror(errno));
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  const int tun = openTun(dev, mtu);
  const int raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (raw < 0) die("raw socket");
  if (setsockopt(raw, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) die("SO_MARK");
  std::printf("ready: %s delays by %lld us, sends with mark 0x%x, mtu %d\n", dev.c_str(),
              static_cast<long long>(delayNs / 1000), mark, mtu);
  std::fflush(stdout);

  std::deque<Held> held;
  uint64_t packets = 0, bytes = 0, dropped = 0, sendErrors = 0;
  size_t mostHeld = 0, heldBytes = 0, mostHeldBytes = 0;
  std::vector<uint8_t> buf(size_t(mtu) + 64);
  while (!stopping) {
    int64_t now = nowNs();
    // Send what is due, in order.
    while (!held.empty() && held.front().due <= now) {
      const Held& h = held.front();
      sockaddr_in to{};
      to.sin_family = AF_INET;
      std::memcpy(&to.sin_addr, h.bytes.data() + 16, 4);  // the IPv4 destination
      if (sendto(raw, h.bytes.data(), h.bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0) {
        ++sendErrors;  // a full queue below: the packet is lost, as on a link
      }
      heldBytes -= h.bytes.size();
      held.pop_front();
    }
    // Take in whatever has arrived.
    for (;;) {
      ssize_t n = read(tun, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        die("read tun");
      }
      if (n < 20 || (buf[0] >> 4) != 4) {  // only IPv4 travels this link
        ++dropped;
        continue;
      }
      ++packets;
      bytes += uint64_t(n);
      held.push_back(Held{nowNs() + delayNs, std::vector<uint8_t>(buf.begin(), buf.begin() + n)});
      heldBytes += size_t(n);
      mostHeld = std::max(mostHeld, held.size());
      mostHeldBytes = std::max(mostHeldBytes, heldBytes);
    }
    // Wait for the next packet or the next one due.
    pollfd pfd{tun, POLLIN, 0};
    timespec wait{1, 0};
    if (!held.empty()) {
      int64_t left = std::max<int64_t>(0, held.front().due - nowNs());
      wait = timespec{time_t(left / 1000000000), long(left % 1000000000)};
    }
    if (ppoll(&pfd, 1, &wait, nullptr) < 0 && errno != EINTR) die("ppoll");
  }
  std::printf(
      "%s: %llu packets, %llu bytes delayed; most held at once %zu packets, %zu bytes; "
      "%llu not IPv4 dropped, %llu lost on sending\n",
      dev.c_str(), static_cast<unsigned long long>(packets), static_cast<unsigned long long>(bytes), mostHeld,
      mostHeldBytes, static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(sendErrors));
  return 0;
}
