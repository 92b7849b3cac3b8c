// What the executor talks to: for every peer and channel a send and a
// receive connector, from the shm transport for ranks of this node and from
// the net transport for ranks of other nodes.
#pragma once

#include <memory>
#include <vector>

#include "transports/net/net_transport.h"
#include "transports/shm/shm_transport.h"

namespace weft {

class Transports {
 public:
  Transports(std::unique_ptr<ShmTransport> shm, std::unique_ptr<NetTransport> net, std::vector<bool> remote,
             size_t slotBytes)
      : shm_(std::move(shm)), net_(std::move(net)), remote_(std::move(remote)), slotBytes_(slotBytes) {}

  SendConnector* sendTo(int peer, int channel) const {
    return remote_[peer] ? net_->sendTo(peer, channel) : shm_->sendTo(peer, channel);
  }
  RecvConnector* recvFrom(int peer, int channel) const {
    return remote_[peer] ? net_->recvFrom(peer, channel) : shm_->recvFrom(peer, channel);
  }
  // Bytes in one slot, the same on every connector and every rank.
  size_t slotBytes() const { return slotBytes_; }
  // True when peer is a thread of this process (its buffers are addressable).
  bool sameProcess(int peer) const { return !remote_[peer] && shm_->sameProcess(peer); }
  // True when peer is on another node (reached over the network).
  bool remote(int peer) const { return remote_[peer]; }
  // Peer, which this rank waits for, is still there.
  Status checkPeerAlive(int peer) const { return remote_[peer] ? net_->checkPeer(peer) : shm_->checkPeerAlive(peer); }
  // A fatal error another rank of this node reported.
  bool peerFailed(Status* status) const { return shm_->peerFailed(status); }
  // Records this rank's fatal error for its node and closes its network
  // connections, so that every rank waiting on it fails at once.
  // This rank's last completed call, published for the node (see ShmTransport::progressOf).
  void publishProgress(int rank, uint64_t callRef) const {
    if (std::atomic<uint64_t>* slot = shm_->progressOf(rank)) slot->store(callRef, std::memory_order_release);
  }
  // A rank of this node's last completed call; false for ranks of other nodes.
  bool progressOf(int rank, uint64_t* callRef) const {
    std::atomic<uint64_t>* slot = shm_->progressOf(rank);
    if (slot == nullptr) return false;
    *callRef = slot->load(std::memory_order_acquire);
    return true;
  }
  // This rank's executor failed and runs nothing more (called by the thread
  // that ran its steps, never while a step runs).
  void markStopped() const { shm_->markStopped(); }
  // Peer will not read this rank's buffers any more (see ShmTransport::readsNoMore).
  bool readsNoMore(int peer) const { return remote_[peer] || shm_->readsNoMore(peer); }
  // The ranks of this node (sorted), this one included.
  const std::vector<int>& localRanks() const { return shm_->localRanks(); }
  void reportFatal(int rank, weftResult_t code, const std::string& message) {
    shm_->reportFatal(rank, code, message);
    if (net_) net_->abortConnections();
  }

 private:
  std::unique_ptr<ShmTransport> shm_;
  std::unique_ptr<NetTransport> net_;
  std::vector<bool> remote_;
  size_t slotBytes_;
};

}  // namespace weft
