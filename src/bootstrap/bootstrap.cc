#include "bootstrap/bootstrap.h"

#include <string.h>

#include <thread>

#include "core/clock.h"
#include "core/env.h"
#include "core/logging.h"

namespace weft {
namespace {

constexpr uint32_t kHelloRoot = 1;
constexpr uint32_t kHelloPeer = 2;
// A stray connection gets this long to present the secret before it is dropped.
constexpr uint64_t kHelloGraceNanos = 2000000000ull;

struct Hello {
  uint32_t magic;
  uint32_t kind;
  uint8_t secret[kSecretBytes];
  int32_t rank;
  int32_t nranks;
  WireAddress listen;
};

struct RootReply {
  uint32_t magic;
  int32_t status;  // weftResult_t
  int32_t nranks;
  char message[200];
};

struct Frame {
  uint32_t tag;
  uint32_t reserved;
  uint64_t bytes;
};

// Reads a hello within the grace period; drops connections that do not
// present the job secret.
Result<Hello> readHello(Socket& sock, const JobSecret& secret, uint32_t kind, uint64_t deadline) {
  Hello hello{};
  uint64_t helloDeadline = std::min(deadline, monotonicNanos() + kHelloGraceNanos);
  Status status = sock.recvAll(&hello, sizeof(hello), helloDeadline, nullptr);
  if (!status.isOk())
    return WEFT_ERROR(weftRemoteError, "dropped bootstrap connection from %s: %s",
                      sock.peerName().c_str(), status.message().c_str());
  JobSecret presented;
  memcpy(presented.bytes, hello.secret, kSecretBytes);
  if (hello.magic != kUniqueIdMagic || hello.kind != kind || !(presented == secret))
    return WEFT_ERROR(weftRemoteError,
                      "dropped bootstrap connection from %s: it did not present this job's "
                      "secret",
                      sock.peerName().c_str());
  return hello;
}

void serveRoot(Socket listener, JobSecret secret) {
  uint64_t deadline = defaultDeadline();
  int nranks = -1;
  std::vector<Socket> ranks;
  std::vector<WireAddress> table;
  int arrived = 0;
  while (nranks < 0 || arrived < nranks) {
    Result<Socket> accepted = listener.accept(deadline, nullptr);
    if (!accepted.isOk()) {
      WEFT_WARN("bootstrap root on %s gave up: %s (%d of %d ranks arrived)",
                listener.peerName().c_str(), accepted.status().message().c_str(), arrived, nranks);
      return;
    }
    Socket sock = accepted.take();
    Result<Hello> hello = readHello(sock, secret, kHelloRoot, deadline);
    if (!hello.isOk()) {
      WEFT_WARN("%s", hello.status().message().c_str());
      continue;
    }
    const Hello& h = hello.value();
    RootReply reply{kUniqueIdMagic, weftSuccess, h.nranks, {0}};
    if (nranks < 0 && h.nranks > 0) {
      nranks = h.nranks;
      ranks.resize(static_cast<size_t>(nranks));
      table.resize(static_cast<size_t>(nranks));
    }
    if (h.nranks != nranks || h.rank < 0 || h.rank >= nranks || ranks[h.rank].valid()) {
      reply.status = weftInvalidUsage;
      snprintf(reply.message, sizeof(reply.message),
               "rank %d joined with nranks=%d, but the job has nranks=%d%s", h.rank, h.nranks,
               nranks, (h.rank >= 0 && h.rank < nranks) ? " or the rank was already taken" : "");
      WEFT_WARN("bootstrap root: %s", reply.message);
      (void)sock.sendAll(&reply, sizeof(reply), deadline, nullptr);
      continue;
    }
    table[h.rank] = h.listen;
    ranks[h.rank] = std::move(sock);
    ++arrived;
  }
  for (int r = 0; r < nranks; ++r) {
    RootReply reply{kUniqueIdMagic, weftSuccess, nranks, {0}};
    Status status = ranks[r].sendAll(&reply, sizeof(reply), deadline, nullptr);
    if (status.isOk())
      status = ranks[r].sendAll(table.data(), table.size() * sizeof(WireAddress), deadline, nullptr);
    if (!status.isOk()) WEFT_WARN("bootstrap root: rank %d: %s", r, status.message().c_str());
  }
}

}  // namespace

Result<NetInterface> bootstrapInterface() {
  std::vector<NetInterface> interfaces = findInterfaces();
  if (interfaces.empty())
    return WEFT_ERROR(weftSystemError,
                      "no network interface matches WEFT_SOCKET_IFNAME='%s' "
                      "WEFT_SOCKET_FAMILY='%s'; interfaces that are up: %s",
                      envString(EnvParam::SocketIfname).c_str(),
                      envString(EnvParam::SocketFamily).c_str(), describeAllInterfaces().c_str());
  return interfaces.front();
}

Result<SocketAddress> startBootstrapRoot(const SocketAddress& address, const JobSecret& secret) {
  SocketAddress bound;
  Result<Socket> listener = Socket::listen(address, &bound);
  if (!listener.isOk()) return listener.status();
  std::thread(serveRoot, listener.take(), secret).detach();
  WEFT_INFO(kLogBoot, "bootstrap root listening on %s", bound.toString().c_str());
  return bound;
}

Result<std::unique_ptr<Bootstrap>> Bootstrap::create(const UniqueIdData& id, int rank, int nranks,
                                                     const std::atomic<bool>* abortFlag) {
  std::unique_ptr<Bootstrap> boot(new Bootstrap(rank, nranks, id.secret, abortFlag));
  uint64_t deadline = defaultDeadline();

  // Our own listener, on the interface that reaches the root's address family.
  Result<NetInterface> nic = bootstrapInterface();
  if (!nic.isOk()) return nic.status();
  SocketAddress listenAddress = nic.value().address;
  if (listenAddress.family() != id.root.family()) {
    // Follow the root's family so peers can reach us the same way.
    for (const auto& candidate : findInterfaces())
      if (candidate.address.family() == id.root.family()) listenAddress = candidate.address;
  }
  listenAddress.setPort(0);
  SocketAddress bound;
  Result<Socket> listener = Socket::listen(listenAddress, &bound);
  if (!listener.isOk()) return listener.status();
  boot->listener_ = listener.take();

  Result<Socket> rootSock = Socket::connect(id.root, deadline, abortFlag);
  if (!rootSock.isOk())
    return WEFT_ERROR(rootSock.status().code(), "rank %d: cannot reach the bootstrap root: %s",
                      rank, rootSock.status().message().c_str());
  Socket root = rootSock.take();
  Hello hello{};
  hello.magic = kUniqueIdMagic;
  hello.kind = kHelloRoot;
  memcpy(hello.secret, id.secret.bytes, kSecretBytes);
  hello.rank = rank;
  hello.nranks = nranks;
  hello.listen = toWire(bound);
  WEFT_CHECK(root.sendAll(&hello, sizeof(hello), deadline, abortFlag));
  RootReply reply{};
  Status status = root.recvAll(&reply, sizeof(reply), deadline, abortFlag);
  if (!status.isOk())
    return WEFT_ERROR(status.code(),
                      "rank %d: waiting for the other %d ranks at the bootstrap root %s: %s", rank,
                      nranks - 1, id.root.toString().c_str(), status.message().c_str());
  if (reply.status != weftSuccess)
    return WEFT_ERROR(static_cast<weftResult_t>(reply.status), "rank %d: bootstrap root refused: %s",
                      rank, reply.message);
  std::vector<WireAddress> table(static_cast<size_t>(nranks));
  WEFT_CHECK(root.recvAll(table.data(), table.size() * sizeof(WireAddress), deadline, abortFlag));
  for (const auto& wire : table) boot->peers_.push_back(fromWire(wire));
  WEFT_INFO(kLogBoot, "rank %d/%d bootstrapped, listening on %s", rank, nranks,
            bound.toString().c_str());
  return boot;
}

Bootstrap::~Bootstrap() = default;

Status Bootstrap::send(int peer, uint32_t tag, const void* data, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  uint64_t deadline = defaultDeadline();
  auto it = outgoing_.find(peer);
  if (it == outgoing_.end()) {
    Result<Socket> sock = Socket::connect(peers_[peer], deadline, abortFlag_);
    if (!sock.isOk())
      return WEFT_ERROR(sock.status().code(), "rank %d: bootstrap connection to rank %d (%s): %s",
                        rank_, peer, peers_[peer].toString().c_str(),
                        sock.status().message().c_str());
    Hello hello{};
    hello.magic = kUniqueIdMagic;
    hello.kind = kHelloPeer;
    memcpy(hello.secret, secret_.bytes, kSecretBytes);
    hello.rank = rank_;
    hello.nranks = nranks_;
    Socket connected = sock.take();
    WEFT_CHECK(connected.sendAll(&hello, sizeof(hello), deadline, abortFlag_));
    it = outgoing_.emplace(peer, std::move(connected)).first;
  }
  Frame frame{tag, 0, bytes};
  Status status = it->second.sendAll(&frame, sizeof(frame), deadline, abortFlag_);
  if (status.isOk() && bytes > 0) status = it->second.sendAll(data, bytes, deadline, abortFlag_);
  if (!status.isOk())
    return WEFT_ERROR(status.code(), "rank %d: bootstrap send to rank %d (%s): %s", rank_, peer,
                      peers_[peer].toString().c_str(), status.message().c_str());
  return Status::ok();
}

Status Bootstrap::acceptUntil(int peer, uint64_t deadline) {
  while (incoming_.find(peer) == incoming_.end()) {
    Result<Socket> accepted = listener_.accept(deadline, abortFlag_);
    if (!accepted.isOk())
      return WEFT_ERROR(accepted.status().code(),
                        "rank %d: waiting for a bootstrap connection from rank %d (%s): %s", rank_,
                        peer, peers_[peer].toString().c_str(),
                        accepted.status().message().c_str());
    Socket sock = accepted.take();
    Result<Hello> hello = readHello(sock, secret_, kHelloPeer, deadline);
    if (!hello.isOk()) {
      WEFT_WARN("rank %d: %s", rank_, hello.status().message().c_str());
      continue;
    }
    int from = hello.value().rank;
    if (from < 0 || from >= nranks_ || hello.value().nranks != nranks_ ||
        incoming_.count(from) != 0) {
      WEFT_WARN("rank %d: dropped bootstrap connection claiming rank %d of %d", rank_, from,
                hello.value().nranks);
      continue;
    }
    incoming_.emplace(from, std::move(sock));
  }
  return Status::ok();
}

Status Bootstrap::recv(int peer, uint32_t tag, void* data, size_t bytes) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  uint64_t deadline = defaultDeadline();
  auto checkSize = [&](size_t got) -> Status {
    if (got != bytes)
      return WEFT_ERROR(weftInvalidUsage,
                        "rank %d: bootstrap message %u from rank %d has %zu bytes, expected %zu "
                        "(ranks disagree on the call)",
                        rank_, tag, peer, got, bytes);
    return Status::ok();
  };
  auto queued = unexpected_.find({peer, tag});
  if (queued != unexpected_.end() && !queued->second.empty()) {
    std::vector<char> message = std::move(queued->second.front());
    queued->second.pop_front();
    WEFT_CHECK(checkSize(message.size()));
    if (bytes > 0) memcpy(data, message.data(), bytes);
    return Status::ok();
  }
  WEFT_CHECK(acceptUntil(peer, deadline));
  Socket& sock = incoming_[peer];
  for (;;) {
    Frame frame{};
    Status status = sock.recvAll(&frame, sizeof(frame), deadline, abortFlag_);
    if (!status.isOk())
      return WEFT_ERROR(status.code(), "rank %d: bootstrap receive from rank %d (%s): %s", rank_,
                        peer, peers_[peer].toString().c_str(), status.message().c_str());
    if (frame.tag == tag) {
      WEFT_CHECK(checkSize(frame.bytes));
      if (bytes > 0) WEFT_CHECK(sock.recvAll(data, bytes, deadline, abortFlag_));
      return Status::ok();
    }
    if (frame.bytes > (1ull << 30))
      return WEFT_ERROR(weftRemoteError, "rank %d: corrupt bootstrap frame from rank %d", rank_,
                        peer);
    std::vector<char> message(frame.bytes);
    if (frame.bytes > 0) WEFT_CHECK(sock.recvAll(message.data(), message.size(), deadline, abortFlag_));
    unexpected_[{peer, frame.tag}].push_back(std::move(message));
  }
}

uint32_t Bootstrap::nextCollectiveTag() { return 0x80000000u | (collectiveSeq_++ & 0x7fffffffu); }

Status Bootstrap::allGather(void* data, size_t bytesPerRank) {
  std::lock_guard<std::recursive_mutex> lock(mutex_);
  uint32_t tag = nextCollectiveTag();
  char* base = static_cast<char*>(data);
  int next = (rank_ + 1) % nranks_;
  int prev = (rank_ + nranks_ - 1) % nranks_;
  // Ring: at step s, pass on the slot that came from s ranks back.
  for (int step = 0; step < nranks_ - 1; ++step) {
    int sendSlot = (rank_ - step + nranks_) % nranks_;
    int recvSlot = (rank_ - step - 1 + nranks_) % nranks_;
    WEFT_CHECK(send(next, tag, base + static_cast<size_t>(sendSlot) * bytesPerRank, bytesPerRank));
    WEFT_CHECK(recv(prev, tag, base + static_cast<size_t>(recvSlot) * bytesPerRank, bytesPerRank));
  }
  return Status::ok();
}

Status Bootstrap::barrier() {
  std::vector<char> bytes(static_cast<size_t>(nranks_));
  return allGather(bytes.data(), 1);
}

}  // namespace weft
