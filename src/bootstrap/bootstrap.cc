#include "bootstrap/bootstrap.h"

#include <algorithm>

#include <string.h>

#include <thread>

#include "bootstrap/handshake.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/logging.h"

namespace weft {
namespace {

struct RootReply {
  uint32_t magic;
  int32_t status;  // weftResult_t
  int32_t nranks;
  char message[200];
  uint8_t proof[kMacBytes];  // the root knows the secret too (acceptorProof)
};

// One row of the table the root hands out.
struct PeerEntry {
  WireAddress listen;
  WireAddress service;
};

struct Frame {
  uint32_t tag;
  uint32_t reserved;
  uint64_t bytes;
};

// Gathers one proven hello per rank, any number of stray connections
// beside them, then sends every rank the table of listen addresses.
void serveRoot(Socket listener, SocketAddress bound, JobSecret secret) {
  uint64_t deadline = defaultDeadline();
  HelloAcceptor acceptor(&listener, secret, HelloKind::Root, "bootstrap root on " + bound.toString());
  int nranks = -1;
  std::vector<AcceptedHello> ranks;
  std::vector<PeerEntry> table;
  int arrived = 0;
  while (nranks < 0 || arrived < nranks) {
    Result<AcceptedHello> accepted = acceptor.next(deadline, nullptr);
    if (!accepted.isOk()) {
      // Only the root knows who never came: it tells every rank that did.
      // The reply's message has 200 bytes: the first 8 named, the rest counted,
      // so a long list is never cut in the middle of a rank number.
      std::string missing;
      int nMissing = 0;
      for (int r = 0; r < nranks; ++r)
        if (!ranks[r].sock.valid() && nMissing++ < 8) missing += (nMissing > 1 ? ", " : "") + std::to_string(r);
      if (nMissing > 8) missing += format(" and %d more", nMissing - 8);
      std::string text = format(
          "%s %s of the job's %d never arrived at the bootstrap root within WEFT_TIMEOUT "
          "(not started, or given another unique id or WEFT_COMM_ID)",
          nMissing == 1 ? "rank" : "ranks", missing.c_str(), nranks);
      WEFT_WARN("bootstrap root gave up: %s", text.c_str());
      for (int r = 0; r < nranks; ++r) {
        if (!ranks[r].sock.valid()) continue;
        RootReply reply{kUniqueIdMagic, weftTimeout, nranks, {0}, {0}};
        acceptorProof(secret, ranks[r].challenge, ranks[r].hello, reply.proof);
        snprintf(reply.message, sizeof(reply.message), "%s", text.c_str());
        (void)ranks[r].sock.sendAll(&reply, sizeof(reply), monotonicNanos() + HelloAcceptor::kAnswerNanos, nullptr);
      }
      return;
    }
    AcceptedHello joined = accepted.take();
    const Hello& h = joined.hello;
    RootReply reply{kUniqueIdMagic, weftSuccess, h.nranks, {0}, {0}};
    acceptorProof(secret, joined.challenge, h, reply.proof);
    if (nranks < 0 && h.nranks > 0) {
      nranks = h.nranks;
      ranks.resize(static_cast<size_t>(nranks));
      table.resize(static_cast<size_t>(nranks));
    }
    bool inRange = h.rank >= 0 && h.rank < nranks;
    if (h.nranks != nranks || !inRange || ranks[h.rank].sock.valid()) {
      reply.status = weftInvalidUsage;
      if (h.nranks == nranks && inRange)
        snprintf(reply.message, sizeof(reply.message),
                 "rank %d is claimed a second time (by %s; the first claim came from %s): two processes were "
                 "started as the same rank",
                 h.rank, joined.sock.peerName().c_str(), ranks[h.rank].sock.peerName().c_str());
      else
        snprintf(reply.message, sizeof(reply.message), "rank %d joined with nranks=%d, but the job has nranks=%d",
                 h.rank, h.nranks, nranks);
      WEFT_WARN("bootstrap root: refused: %s", reply.message);
      (void)joined.sock.sendAll(&reply, sizeof(reply), monotonicNanos() + HelloAcceptor::kAnswerNanos, nullptr);
      continue;
    }
    table[h.rank] = PeerEntry{h.listen, h.service};
    ranks[h.rank] = std::move(joined);
    ++arrived;
  }
  if (acceptor.dropped() > 0)
    WEFT_INFO(kLogBoot, "bootstrap root: %d ranks joined; %zu other connection(s) dropped", nranks, acceptor.dropped());
  for (int r = 0; r < nranks; ++r) {
    RootReply reply{kUniqueIdMagic, weftSuccess, nranks, {0}, {0}};
    acceptorProof(secret, ranks[r].challenge, ranks[r].hello, reply.proof);
    Status status = ranks[r].sock.sendAll(&reply, sizeof(reply), deadline, nullptr);
    if (status.isOk())
      status = ranks[r].sock.sendAll(table.data(), table.size() * sizeof(PeerEntry), deadline, nullptr);
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
                      envString(EnvParam::SocketIfname).c_str(), envString(EnvParam::SocketFamily).c_str(),
                      describeAllInterfaces().c_str());
  return interfaces.front();
}

Result<SocketAddress> startBootstrapRoot(const SocketAddress& address, const JobSecret& secret) {
  SocketAddress bound;
  Result<Socket> listener = Socket::listen(address, &bound);
  if (!listener.isOk()) return listener.status();
  std::thread(serveRoot, listener.take(), bound, secret).detach();
  WEFT_INFO(kLogBoot, "bootstrap root listening on %s", bound.toString().c_str());
  return bound;
}

Result<SocketAddress> Bootstrap::listenAddressFor(const UniqueIdData& id) {
  Result<NetInterface> nic = bootstrapInterface();
  if (!nic.isOk()) return nic.status();
  SocketAddress listenAddress = nic.value().address;
  if (listenAddress.family() != id.root.family()) {
    // Follow the root's family so peers can reach us the same way.
    for (const auto& candidate : findInterfaces())
      if (candidate.address.family() == id.root.family()) listenAddress = candidate.address;
  }
  listenAddress.setPort(0);
  return listenAddress;
}

Result<std::unique_ptr<Bootstrap>> Bootstrap::create(const UniqueIdData& id, int rank, int nranks,
                                                     const std::atomic<bool>* abortFlag, const SocketAddress& service) {
  std::unique_ptr<Bootstrap> boot(new Bootstrap(rank, nranks, id.secret, abortFlag));
  uint64_t deadline = defaultDeadline();

  // Our own listener, on the interface that reaches the root's address family.
  Result<SocketAddress> listenAddress = listenAddressFor(id);
  if (!listenAddress.isOk()) return listenAddress.status();
  SocketAddress bound;
  Result<Socket> listener = Socket::listen(listenAddress.value(), &bound);
  if (!listener.isOk()) return listener.status();
  boot->listener_ = listener.take();

  Result<Socket> rootSock = Socket::connect(id.root, deadline, abortFlag);
  if (!rootSock.isOk())
    return WEFT_ERROR(rootSock.status().code(), "rank %d: cannot reach the bootstrap root: %s", rank,
                      rootSock.status().message().c_str());
  Socket root = rootSock.take();
  Hello hello{};
  hello.kind = static_cast<uint32_t>(HelloKind::Root);
  hello.rank = rank;
  hello.nranks = nranks;
  hello.listen = toWire(bound);
  hello.service = toWire(service);
  Challenge challenge{};
  Status status = answerChallenge(root, id.secret, &hello, &challenge, deadline, abortFlag);
  if (!status.isOk())
    return WEFT_ERROR(status.code(), "rank %d: handshake with the bootstrap root %s: %s", rank,
                      id.root.toString().c_str(), status.message().c_str());
  RootReply reply{};
  // The root gives up at its own deadline and then says who never came:
  // wait a little past ours for that answer.
  status = root.recvAll(&reply, sizeof(reply), deadline + 2000000000ull, abortFlag);
  if (!status.isOk())
    return WEFT_ERROR(status.code(), "rank %d: waiting for the other %d ranks at the bootstrap root %s: %s%s", rank,
                      nranks - 1, id.root.toString().c_str(), status.message().c_str(),
                      id.rootStartedByRank0 && status.code() != weftTimeout
                          ? " (with WEFT_COMM_ID the root runs in rank 0's process: rank 0 exited or died)"
                          : "");
  uint8_t proof[kMacBytes];
  acceptorProof(id.secret, challenge, hello, proof);
  if (!equalConstantTime(proof, reply.proof, kMacBytes))
    return WEFT_ERROR(weftRemoteError,
                      "rank %d: the bootstrap root at %s does not know this job's secret: another job's root, or an "
                      "impostor, listens there",
                      rank, id.root.toString().c_str());
  if (reply.status != weftSuccess)
    return WEFT_ERROR(static_cast<weftResult_t>(reply.status), "rank %d: the bootstrap root says: %s", rank,
                      reply.message);
  std::vector<PeerEntry> table(static_cast<size_t>(nranks));
  WEFT_CHECK(root.recvAll(table.data(), table.size() * sizeof(PeerEntry), deadline, abortFlag));
  for (const auto& entry : table) {
    boot->peers_.push_back(fromWire(entry.listen));
    boot->services_.push_back(fromWire(entry.service));
  }
  WEFT_INFO(kLogBoot, "rank %d/%d bootstrapped, listening on %s", rank, nranks, bound.toString().c_str());
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
      return WEFT_ERROR(sock.status().code(), "rank %d: bootstrap connection to rank %d (%s): %s", rank_, peer,
                        peers_[peer].toString().c_str(), sock.status().message().c_str());
    Hello hello{};
    hello.kind = static_cast<uint32_t>(HelloKind::Peer);
    hello.rank = rank_;
    hello.nranks = nranks_;
    Socket connected = sock.take();
    Challenge challenge{};
    Status answered =
        answerChallenge(connected, secret_, &hello, &challenge, deadline, abortFlag_, [this] { serveIncoming(0); });
    if (!answered.isOk())
      return WEFT_ERROR(answered.code(), "rank %d: bootstrap handshake with rank %d (%s): %s", rank_, peer,
                        peers_[peer].toString().c_str(), answered.message().c_str());
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

void Bootstrap::serveIncoming(uint64_t waitUntilNanos) {
  if (!acceptor_)
    acceptor_ = std::make_unique<HelloAcceptor>(&listener_, secret_, HelloKind::Peer, format("rank %d", rank_));
  acceptor_->serve(waitUntilNanos);
  AcceptedHello joined;
  while (acceptor_->takeReady(&joined)) {
    int from = joined.hello.rank;
    if (from < 0 || from >= nranks_ || joined.hello.nranks != nranks_ || incoming_.count(from) != 0) {
      WEFT_WARN("rank %d: refused a second or invalid bootstrap connection claiming rank %d of %d from %s", rank_, from,
                joined.hello.nranks, joined.sock.peerName().c_str());
      continue;
    }
    incoming_.emplace(from, std::move(joined.sock));
  }
}

Status Bootstrap::acceptUntil(int peer, uint64_t deadline) {
  for (;;) {
    serveIncoming(incoming_.count(peer) != 0 ? 0 : deadline);
    if (incoming_.count(peer) != 0) return Status::ok();
    if (abortFlag_ != nullptr && abortFlag_->load())
      return WEFT_ERROR(weftInvalidUsage, "rank %d: aborted while waiting for a bootstrap connection from rank %d",
                        rank_, peer);
    if (monotonicNanos() >= deadline)
      return WEFT_ERROR(weftTimeout,
                        "rank %d: waiting for a bootstrap connection from rank %d (%s): none that proved itself "
                        "arrived within WEFT_TIMEOUT (%zu other connection(s) dropped)",
                        rank_, peer, peers_[peer].toString().c_str(), acceptor_->dropped());
  }
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
  TaggedQueues& early = unexpected_[peer];
  auto queued = early.find(tag);
  if (queued != early.end() && !queued->second.empty()) {
    std::vector<char> message = std::move(queued->second.front());
    queued->second.pop_front();
    WEFT_CHECK(checkSize(message.size()));
    if (bytes > 0) memcpy(data, message.data(), bytes);
    return Status::ok();
  }
  WEFT_CHECK(acceptUntil(peer, deadline));
  size_t got = 0;
  Status status = readTagged(incoming_[peer], tag, data, bytes, deadline, abortFlag_, &unexpected_[peer], &got);
  if (status.isOk() && got != bytes) return checkSize(got);
  if (!status.isOk())
    return WEFT_ERROR(status.code(), "rank %d: bootstrap receive from rank %d (%s): %s", rank_, peer,
                      peers_[peer].toString().c_str(), status.message().c_str());
  return Status::ok();
}

Status Bootstrap::readTagged(Socket& sock, uint32_t tag, void* data, size_t bytes, uint64_t deadline,
                             const std::atomic<bool>* abortFlag, TaggedQueues* others, size_t* got) {
  for (;;) {
    Frame frame{};
    WEFT_CHECK(sock.recvAll(&frame, sizeof(frame), deadline, abortFlag));
    if (frame.bytes > kMaxFrameBytes)
      return WEFT_ERROR(weftRemoteError, "corrupt bootstrap frame (tag %u, %llu bytes)", frame.tag,
                        static_cast<unsigned long long>(frame.bytes));
    if (frame.tag == tag) {
      *got = frame.bytes;
      if (frame.bytes != bytes) return Status::ok();  // the caller names the disagreement
      if (bytes > 0) WEFT_CHECK(sock.recvAll(data, bytes, deadline, abortFlag));
      return Status::ok();
    }
    // Another call's message: kept for the receive that asks for it. Read
    // as it arrives, so a corrupt size costs no more memory than the bytes
    // that really came.
    std::vector<char> message;
    for (uint64_t left = frame.bytes; left > 0;) {
      size_t chunk = static_cast<size_t>(std::min<uint64_t>(left, 64 * 1024));
      size_t have = message.size();
      message.resize(have + chunk);
      WEFT_CHECK(sock.recvAll(message.data() + have, chunk, deadline, abortFlag));
      left -= chunk;
    }
    (*others)[frame.tag].push_back(std::move(message));
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
