// One way of reaching peers: shared memory between the ranks of a node, the
// network between nodes, and (with the CUDA executor) peer-to-peer between
// GPUs. Which one reaches a peer is decided once, at init, by the selection
// list in transports.h (NCCL's transport array): the first entry whose
// canConnect accepts the pair. The executor sees only the connectors.
#pragma once

#include "core/status.h"
#include "transports/connector.h"

namespace weft {

class Transport {
 public:
  virtual ~Transport() = default;
  virtual const char* name() const = 0;
  // True when it reaches ranks of other nodes (over the network).
  virtual bool crossesNodes() const = 0;
  virtual SendConnector* sendTo(int peer, int channel) const = 0;
  virtual RecvConnector* recvFrom(int peer, int channel) const = 0;
  // Peer, which this rank waits for, is still there; otherwise an error
  // that names it.
  virtual Status checkPeerAlive(int peer) const = 0;
  // True when peer is a thread of this process (its buffers are addressable).
  virtual bool sameProcess(int peer) const {
    (void)peer;
    return false;
  }
  // True when this rank and peer, processes of one node, read each other's
  // memory with one copy (cross-memory attach): a slot may then carry an
  // address in the sender's address space, which copyFromPeer reads.
  virtual bool copiesByAddress(int peer) const {
    (void)peer;
    return false;
  }
  // Copies bytes at address in peer's address space into dst.
  virtual Status copyFromPeer(int peer, void* dst, uint64_t address, size_t bytes) const {
    (void)dst, (void)address, (void)bytes;
    return WEFT_ERROR(weftInternalError, "rank %d's transport cannot read its memory", peer);
  }
  // True when this rank and peer, processes of one node, map each other's
  // registered buffers (weftCommRegister on weftMemAllocHost memory): a slot
  // may then carry the address of one, which mappedAddress translates.
  virtual bool mapsRegistered(int peer) const {
    (void)peer;
    return false;
  }
  // Where [address, address + bytes) of peer's registered buffers is mapped
  // in this process; nullptr when no registration of peer's holds it.
  virtual Result<const void*> mappedAddress(int peer, uint64_t address, size_t bytes) const {
    (void)peer, (void)address, (void)bytes;
    return static_cast<const void*>(nullptr);
  }
  // Peer will not read this rank's buffers any more (it failed or left);
  // peers that never read them by address say so at once.
  virtual bool readsNoMore(int peer) const {
    (void)peer;
    return true;
  }
  // After a fatal error: close what peers wait on, so they fail at once.
  virtual void abortConnections() {}
};

}  // namespace weft
