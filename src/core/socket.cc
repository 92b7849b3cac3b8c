#include "core/socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/env.h"
#include "core/logging.h"

namespace weft {

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  return 0;
}

void SocketAddress::setPort(uint16_t port) {
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
}

std::string SocketAddress::toString() const {
  char host[INET6_ADDRSTRLEN] = "?";
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, host, sizeof(host));
    return format("%s:%u", host, port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, host, sizeof(host));
    return format("[%s]:%u", host, port());
  }
  return "<no address>";
}

Result<SocketAddress> parseSocketAddress(const std::string& text) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return WEFT_ERROR(weftInvalidArgument, "address '%s' is not of the form [ipv6]:port", text.c_str());
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return WEFT_ERROR(weftInvalidArgument, "address '%s' has no ':port'", text.c_str());
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* result = nullptr;
  int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr)
    return WEFT_ERROR(weftInvalidArgument, "cannot resolve address '%s': %s", text.c_str(), gai_strerror(rc));
  SocketAddress address;
  memcpy(&address.storage, result->ai_addr, result->ai_addrlen);
  address.length = result->ai_addrlen;
  freeaddrinfo(result);
  return address;
}

bool listFilterMatches(const std::string& filter,
                       const std::function<bool(const std::string& entry, bool exact)>& entryMatches) {
  if (filter.empty()) return true;
  bool exclude = filter[0] == '^';
  size_t pos = exclude ? 1 : 0;
  bool exact = pos < filter.size() && filter[pos] == '=';
  if (exact) ++pos;
  bool listed = false;
  while (pos <= filter.size()) {
    size_t comma = filter.find(',', pos);
    if (comma == std::string::npos) comma = filter.size();
    std::string entry = filter.substr(pos, comma - pos);
    if (!entry.empty() && entryMatches(entry, exact)) listed = true;
    pos = comma + 1;
  }
  return exclude ? !listed : listed;
}

bool interfaceMatches(const std::string& filter, const std::string& name) {
  return listFilterMatches(filter, [&](const std::string& entry, bool exact) {
    return exact ? name == entry : name.compare(0, entry.size(), entry) == 0;
  });
}

namespace {

std::vector<NetInterface> upInterfaces() {
  std::vector<NetInterface> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || !(entry->ifa_flags & IFF_UP)) continue;
    int family = entry->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    if (family == AF_INET6) {
      // Link-local IPv6 addresses need a scope id to be useful; skip them.
      auto* sa6 = reinterpret_cast<sockaddr_in6*>(entry->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&sa6->sin6_addr)) continue;
    }
    NetInterface nic;
    nic.name = entry->ifa_name;
    size_t length = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    memcpy(&nic.address.storage, entry->ifa_addr, length);
    nic.address.length = static_cast<socklen_t>(length);
    out.push_back(nic);
  }
  freeifaddrs(list);
  return out;
}

int requestedFamily() {
  std::string family = envString(EnvParam::SocketFamily);
  if (family == "AF_INET") return AF_INET;
  if (family == "AF_INET6") return AF_INET6;
  return AF_UNSPEC;
}

}  // namespace

std::vector<NetInterface> findInterfaces() {
  std::vector<NetInterface> all = upInterfaces();
  int family = requestedFamily();
  std::vector<NetInterface> out;
  std::string filter = envString(EnvParam::SocketIfname);
  auto keep = [&](const NetInterface& nic) { return family == AF_UNSPEC || nic.address.family() == family; };
  if (!filter.empty()) {
    for (const auto& nic : all)
      if (keep(nic) && interfaceMatches(filter, nic.name)) out.push_back(nic);
    return out;
  }
  // Non-loopback IPv4 first, then IPv6, then loopback.
  for (int pass = 0; pass < 3; ++pass) {
    for (const auto& nic : all) {
      if (!keep(nic)) continue;
      bool loopback = nic.name.compare(0, 2, "lo") == 0;
      if ((pass == 0 && !loopback && nic.address.family() == AF_INET) ||
          (pass == 1 && !loopback && nic.address.family() == AF_INET6) || (pass == 2 && loopback))
        out.push_back(nic);
    }
    if (!out.empty() && pass < 2) break;
  }
  return out;
}

std::string describeAllInterfaces() {
  std::string out;
  for (const auto& nic : upInterfaces()) {
    if (!out.empty()) out += ", ";
    out += nic.name + " (" + nic.address.toString() + ")";
  }
  return out.empty() ? "none" : out;
}

uint64_t defaultDeadline() {
  return monotonicNanos() + static_cast<uint64_t>(envInt(EnvParam::Timeout)) * 1000000000ull;
}

Socket::~Socket() { close(); }

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = other.fd_;
    peer_ = std::move(other.peer_);
    other.fd_ = -1;
  }
  return *this;
}

void Socket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void tuneSocket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
}

Result<Socket> Socket::listen(const SocketAddress& address, SocketAddress* bound) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return WEFT_ERROR(weftSystemError, "socket(): %s", strerror(errno));
  Socket sock(fd);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0)
    return WEFT_ERROR(weftSystemError, "cannot bind to %s: %s", address.toString().c_str(), strerror(errno));
  if (::listen(fd, 1024) != 0)
    return WEFT_ERROR(weftSystemError, "listen on %s: %s", address.toString().c_str(), strerror(errno));
  tuneSocket(fd);
  if (bound != nullptr) {
    bound->length = sizeof(bound->storage);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound->storage), &bound->length);
  }
  return sock;
}

// Waits for fd to become ready for events; false on deadline or abort.
static Status waitReady(int fd, short events, uint64_t deadlineNanos, const std::atomic<bool>* abortFlag,
                        const char* what) {
  for (;;) {
    if (abortFlag != nullptr && abortFlag->load(std::memory_order_relaxed))
      return WEFT_ERROR(weftInvalidUsage, "%s aborted: the communicator was aborted", what);
    uint64_t now = monotonicNanos();
    if (now >= deadlineNanos)
      return WEFT_ERROR(weftTimeout, "%s timed out after WEFT_TIMEOUT=%lld s", what,
                        static_cast<long long>(envInt(EnvParam::Timeout)));
    pollfd pfd{fd, events, 0};
    int waitMs = static_cast<int>(std::min<uint64_t>((deadlineNanos - now) / 1000000 + 1, 100));
    int rc = ::poll(&pfd, 1, waitMs);
    if (rc > 0) return Status::ok();
    if (rc < 0 && errno != EINTR) return WEFT_ERROR(weftSystemError, "%s: poll failed: %s", what, strerror(errno));
  }
}

Result<Socket> Socket::connect(const SocketAddress& address, uint64_t deadlineNanos, const std::atomic<bool>* abortFlag,
                               bool retryRefused) {
  uint64_t backoffMicros = 1000;
  for (;;) {
    int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return WEFT_ERROR(weftSystemError, "socket(): %s", strerror(errno));
    Socket sock(fd);
    int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length);
    if (rc != 0 && errno == EINTR) {
      // A signal interrupted the connect; the connection goes on without
      // us: wait until it settles, then ask how it ended.
      pollfd pfd{fd, POLLOUT, 0};
      int ready;
      do {
        uint64_t now = monotonicNanos();
        int ms =
            now >= deadlineNanos ? 0 : static_cast<int>(std::min<uint64_t>((deadlineNanos - now) / 1000000 + 1, 1000));
        ready = ::poll(&pfd, 1, ms);
      } while ((ready < 0 && errno == EINTR) || (ready == 0 && monotonicNanos() < deadlineNanos));
      int soError = ETIMEDOUT;
      socklen_t len = sizeof(soError);
      if (ready > 0) getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len);
      rc = soError == 0 ? 0 : -1;
      errno = soError;
    }
    if (rc == 0) {
      tuneSocket(fd);
      (void)sock.peerName();  // remembered from now on
      return sock;
    }
    int err = errno;
    if ((err != ECONNREFUSED && err != ETIMEDOUT && err != EAGAIN && err != ECONNRESET) ||
        (err == ECONNREFUSED && !retryRefused))
      return WEFT_ERROR(weftSystemError, "connect to %s: %s", address.toString().c_str(), strerror(err));
    if (abortFlag != nullptr && abortFlag->load())
      return WEFT_ERROR(weftInvalidUsage, "connect to %s aborted", address.toString().c_str());
    if (monotonicNanos() + backoffMicros * 1000 >= deadlineNanos)
      return WEFT_ERROR(weftTimeout,
                        "connect to %s: %s until WEFT_TIMEOUT; is the peer running and the "
                        "address reachable?",
                        address.toString().c_str(), strerror(err));
    usleep(static_cast<useconds_t>(backoffMicros));
    backoffMicros = std::min<uint64_t>(backoffMicros * 2, 100000);
  }
}

Result<Socket> Socket::accept(uint64_t deadlineNanos, const std::atomic<bool>* abortFlag) {
  for (;;) {
    WEFT_CHECK(waitReady(fd_, POLLIN, deadlineNanos, abortFlag, "accept"));
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) {
      tuneSocket(fd);
      return Socket(fd);
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
      return WEFT_ERROR(weftSystemError, "accept: %s", strerror(errno));
  }
}

Status Socket::sendAll(const void* data, size_t bytes, uint64_t deadlineNanos, const std::atomic<bool>* abortFlag) {
  const char* cursor = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::send(fd_, cursor, bytes, MSG_NOSIGNAL);
    if (n > 0) {
      cursor += n;
      bytes -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      WEFT_CHECK(waitReady(fd_, POLLOUT, deadlineNanos, abortFlag, "socket send"));
      continue;
    }
    return WEFT_ERROR(weftRemoteError, "send to %s failed: %s (the peer closed or died)", peerName().c_str(),
                      strerror(errno));
  }
  return Status::ok();
}

Status Socket::recvAll(void* data, size_t bytes, uint64_t deadlineNanos, const std::atomic<bool>* abortFlag) {
  char* cursor = static_cast<char*>(data);
  while (bytes > 0) {
    ssize_t n = ::recv(fd_, cursor, bytes, 0);
    if (n > 0) {
      cursor += n;
      bytes -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0)
      return WEFT_ERROR(weftRemoteError, "connection from %s closed by the peer (it exited or died)",
                        peerName().c_str());
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      WEFT_CHECK(waitReady(fd_, POLLIN, deadlineNanos, abortFlag, "socket receive"));
      continue;
    }
    return WEFT_ERROR(weftRemoteError, "receive from %s failed: %s", peerName().c_str(), strerror(errno));
  }
  return Status::ok();
}

std::string peerName(int fd) {
  SocketAddress address;
  address.length = sizeof(address.storage);
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&address.storage), &address.length) != 0)
    return "<unconnected>";
  return address.toString();
}

std::string Socket::peerName() const {
  if (!peer_.empty()) return peer_;
  std::string name = weft::peerName(fd_);
  if (name != "<unconnected>") peer_ = name;
  return name;
}

}  // namespace weft
