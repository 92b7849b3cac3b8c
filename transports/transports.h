// What the executor talks to: for every peer and channel a send and a
// receive connector, from the transport the selection list chose for that
// peer at init (transport.h). The node's shared state (the first fatal
// error, who is still there, each rank's progress) is the shm transport's,
// which every communicator of more than one rank has.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "transports/net/net_transport.h"
#include "transports/shm/shm_transport.h"
#include "transports/transport.h"

namespace weft {

// What this rank knows about a peer when transports are chosen (from the
// bootstrap's exchange of host facts), the same on both sides of a pair.
struct PeerFacts {
  bool sameHost = false;  // one host identity: shared memory reaches it
};

// An entry of the selection list: a transport that can connect this rank
// to the peers it accepts. The first entry that accepts a peer reaches it.
struct TransportEntry {
  const char* name;
  bool (*canConnect)(const PeerFacts& peer);
};
enum TransportIndex : int8_t { kShmTransport = 0, kNetTransport = 1 };
// In order of preference: shm (ranks of this node), net (everyone).
std::span<const TransportEntry> transportList();
// The index in transportList() of the entry that reaches peer.
int chooseTransport(const PeerFacts& peer);

class Transports {
 public:
  // transports[i] is transportList()[i]'s instance (null where no peer uses
  // it); transportOf[peer] indexes it (shm for this rank itself).
  Transports(std::vector<std::unique_ptr<Transport>> transports, std::vector<int8_t> transportOf, size_t slotBytes);

  SendConnector* sendTo(int peer, int channel) const { return of(peer).sendTo(peer, channel); }
  RecvConnector* recvFrom(int peer, int channel) const { return of(peer).recvFrom(peer, channel); }
  // Bytes in one slot, the same on every connector and every rank.
  size_t slotBytes() const { return slotBytes_; }
  // True when peer is a thread of this process (its buffers are addressable).
  bool sameProcess(int peer) const { return of(peer).sameProcess(peer); }
  // True when peer's memory is read with one copy from another process.
  bool copiesByAddress(int peer) const { return of(peer).copiesByAddress(peer); }
  // Every peer of this communicator is a process of this node that this
  // rank reads, and that reads it, by cross-memory attach: a message that
  // goes by address then never needs a slot's payload, whatever its size.
  // The same answer on every rank.
  bool everyPeerCopiesByAddress() const {
    return node_->localRanks().size() == transportOf_.size() && node_->everyPeerCopiesByAddress();
  }
  Status copyFromPeer(int peer, void* dst, uint64_t address, size_t bytes) const {
    return of(peer).copyFromPeer(peer, dst, address, bytes);
  }
  // True when peer maps this rank's registered buffers (and this rank its).
  bool mapsRegistered(int peer) const { return of(peer).mapsRegistered(peer); }
  Result<const void*> mappedAddress(int peer, uint64_t address, size_t bytes) const {
    return of(peer).mappedAddress(peer, address, bytes);
  }
  // True when [p, p + bytes) lies in one of this rank's registered buffers
  // that peers of other processes can map.
  bool registered(const void* p, size_t bytes) const { return node_->registered(p, bytes); }
  int publishRegistration(const void* base, size_t bytes, const SharedAllocation& allocation) const {
    return node_->publishRegistration(base, bytes, allocation);
  }
  void withdrawRegistration(int entry) const { node_->withdrawRegistration(entry); }
  // True when peer is on another node (reached over the network).
  bool remote(int peer) const { return of(peer).crossesNodes(); }
  // Peer, which this rank waits for, is still there.
  Status checkPeerAlive(int peer) const { return of(peer).checkPeerAlive(peer); }
  // A fatal error another rank of this node reported.
  bool peerFailed(Status* status) const { return node_->peerFailed(status); }
  // This rank's last completed call, published for the node (see ShmTransport::progressOf).
  void publishProgress(int rank, uint64_t callRef) const {
    if (std::atomic<uint64_t>* slot = node_->progressOf(rank)) slot->store(callRef, std::memory_order_release);
  }
  // A rank of this node's last completed call; false for ranks of other nodes.
  bool progressOf(int rank, uint64_t* callRef) const {
    std::atomic<uint64_t>* slot = node_->progressOf(rank);
    if (slot == nullptr) return false;
    *callRef = slot->load(std::memory_order_acquire);
    return true;
  }
  // This rank's executor failed and runs nothing more (called by the thread
  // that ran its steps, never while a step runs).
  void markStopped() const { node_->markStopped(); }
  // Peer will not read this rank's buffers any more (see Transport::readsNoMore).
  bool readsNoMore(int peer) const { return of(peer).readsNoMore(peer); }
  // The ranks of this node (sorted), this one included.
  const std::vector<int>& localRanks() const { return node_->localRanks(); }
  // Records this rank's fatal error for its node and closes every
  // transport's connections, so that every rank waiting on it fails at once.
  void reportFatal(int rank, weftResult_t code, const std::string& message);

 private:
  const Transport& of(int peer) const { return *transports_[static_cast<size_t>(transportOf_[peer])]; }

  std::vector<std::unique_ptr<Transport>> transports_;
  std::vector<int8_t> transportOf_;
  ShmTransport* node_ = nullptr;
  size_t slotBytes_;
};

}  // namespace weft
