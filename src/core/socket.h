// TCP sockets for the bootstrap: interface selection, listen/connect/accept,
// and whole-message send/receive that always carry a deadline.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace weft {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  int family() const { return storage.ss_family; }
  uint16_t port() const;
  void setPort(uint16_t port);
  std::string toString() const;  // "ip:port" or "[ip6]:port"
};

// Parses "ip:port", "[ipv6]:port" or "host:port".
Result<SocketAddress> parseSocketAddress(const std::string& text);

struct NetInterface {
  std::string name;
  SocketAddress address;  // port 0
};

// Interfaces that are up, filtered by WEFT_SOCKET_IFNAME / WEFT_SOCKET_FAMILY
// with NCCL's syntax ("eth,ib" prefixes, "^docker" excludes, "=eth0" exact).
// Without a filter: non-loopback interfaces first, loopback if none.
std::vector<NetInterface> findInterfaces();
// Every interface that is up, unfiltered (for error messages).
std::string describeAllInterfaces();
// NCCL's list syntax: a comma list of entries, a leading ^ excludes the
// listed ones, = asks for exact matches. entryMatches(entry, exact) says
// whether one entry names the thing being filtered.
bool listFilterMatches(const std::string& filter,
                       const std::function<bool(const std::string& entry, bool exact)>& entryMatches);
// True when the interface name passes the NCCL-style filter (entries are
// name prefixes, or whole names with =).
bool interfaceMatches(const std::string& filter, const std::string& name);
// "ip:port" of the other end of a connected socket.
std::string peerName(int fd);
// TCP_NODELAY, non-blocking, close-on-exec.
void tuneSocket(int fd);

class Socket {
 public:
  Socket() = default;
  // Remembers the other end's address while the socket is connected, so
  // that an error after the peer reset still names it.
  explicit Socket(int fd) : fd_(fd) { (void)peerName(); }
  ~Socket();
  Socket(Socket&& other) noexcept : fd_(other.fd_), peer_(std::move(other.peer_)) { other.fd_ = -1; }
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void close();
  // Gives up ownership of the descriptor.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  // Listens on address (port 0 picks one); the bound address is returned.
  static Result<Socket> listen(const SocketAddress& address, SocketAddress* bound);
  // Connects, retrying refused connections until the deadline (a peer that
  // is still starting); retryRefused false takes a refusal as the answer.
  static Result<Socket> connect(const SocketAddress& address, uint64_t deadlineNanos,
                                const std::atomic<bool>* abortFlag, bool retryRefused = true);
  // Accepts one connection (non-blocking socket ready within the deadline).
  Result<Socket> accept(uint64_t deadlineNanos, const std::atomic<bool>* abortFlag);

  Status sendAll(const void* data, size_t bytes, uint64_t deadlineNanos, const std::atomic<bool>* abortFlag);
  Status recvAll(void* data, size_t bytes, uint64_t deadlineNanos, const std::atomic<bool>* abortFlag);
  // "ip:port" of the other end, as it was while connected.
  std::string peerName() const;

 private:
  int fd_ = -1;
  mutable std::string peer_;
};

// now + WEFT_TIMEOUT seconds.
uint64_t defaultDeadline();

}  // namespace weft
