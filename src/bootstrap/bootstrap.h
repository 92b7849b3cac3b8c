// The bootstrap network: how ranks find each other before any transport
// exists. A root (a thread of the process that made the unique id, or of
// rank 0 with WEFT_COMM_ID) collects every rank's listening address and hands
// out the table; after that, ranks send each other tagged control messages
// directly. Every connection starts with the job secret; one that does not is
// dropped and logged.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "bootstrap/handshake.h"
#include "bootstrap/unique_id.h"
#include "core/socket.h"

namespace weft {

// Starts a root listening on address (port 0 picks a port) in a detached
// thread that serves one job of nranks and exits; returns its bound address.
Result<SocketAddress> startBootstrapRoot(const SocketAddress& address, const JobSecret& secret);

// Picks the interface for bootstrap sockets (see WEFT_SOCKET_IFNAME).
Result<NetInterface> bootstrapInterface();

class Bootstrap {
 public:
  // service: an address this rank advertises beside its listener (its
  // liveness service), handed to every rank with the address table, so a
  // rank can ask after its peers from the first exchange on.
  static Result<std::unique_ptr<Bootstrap>> create(const UniqueIdData& id, int rank, int nranks,
                                                   const std::atomic<bool>* abortFlag,
                                                   const SocketAddress& service = SocketAddress());
  // The address (port 0) a rank of this job listens on: the interface that
  // WEFT_SOCKET_IFNAME picks, in the root's address family.
  static Result<SocketAddress> listenAddressFor(const UniqueIdData& id);
  ~Bootstrap();

  int rank() const { return rank_; }
  int nranks() const { return nranks_; }

  Status send(int peer, uint32_t tag, const void* data, size_t bytes);
  // Receives exactly bytes from peer with tag; a message of another size is
  // an error naming both.
  Status recv(int peer, uint32_t tag, void* data, size_t bytes);
  // data holds nranks slots of bytesPerRank; this rank's slot is filled in.
  Status allGather(void* data, size_t bytesPerRank);
  Status barrier();
  const SocketAddress& peerAddress(int peer) const { return peers_[peer]; }
  // The service address peer advertised (see create).
  const SocketAddress& serviceAddress(int peer) const { return services_[peer]; }
  // Messages that arrived before their receive, by tag.
  using TaggedQueues = std::map<uint32_t, std::deque<std::vector<char>>>;
  // A frame larger than this is corrupt.
  static constexpr uint64_t kMaxFrameBytes = 1ull << 30;
  // Reads frames from sock until one with tag comes; frames of other tags
  // are queued in others. *got is that frame's size: its payload is read
  // into data only when it is bytes long (the caller reports a mismatch).
  // Errors: the socket's, and a corrupt frame.
  static Status readTagged(Socket& sock, uint32_t tag, void* data, size_t bytes, uint64_t deadline,
                           const std::atomic<bool>* abortFlag, TaggedQueues* others, size_t* got);

  // The job secret every connection of this job presents.
  const JobSecret& secret() const { return secret_; }

 private:
  Bootstrap(int rank, int nranks, const JobSecret& secret, const std::atomic<bool>* abortFlag)
      : rank_(rank), nranks_(nranks), secret_(secret), abortFlag_(abortFlag) {}
  Status acceptUntil(int peer, uint64_t deadline);
  // Serves the listener (see HelloAcceptor::serve) and keeps the peers that proved themselves.
  void serveIncoming(uint64_t waitUntilNanos);
  uint32_t nextCollectiveTag();

  int rank_;
  int nranks_;
  JobSecret secret_;
  const std::atomic<bool>* abortFlag_;
  Socket listener_;
  std::unique_ptr<HelloAcceptor> acceptor_;  // over listener_, made on first use
  std::vector<SocketAddress> peers_;
  std::vector<SocketAddress> services_;
  std::map<int, Socket> outgoing_;
  std::map<int, Socket> incoming_;
  std::map<int, TaggedQueues> unexpected_;  // per peer
  uint32_t collectiveSeq_ = 0;
  std::recursive_mutex mutex_;
};

}  // namespace weft
