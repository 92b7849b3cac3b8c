// The shm transport: connectors between ranks of one node through POSIX
// shared memory. The node's lowest rank creates one segment holding a control
// block and a FIFO for every ordered pair of local ranks and every channel;
// the others map it, and the name is unlinked once all have.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "core/shared_host_memory.h"
#include "transports/connector.h"
#include "transports/shm/shm_segment.h"
#include "transports/transport.h"

namespace weft {

// Shared by the ranks of a node: the first fatal error any of them reports,
// which makes every other rank stop waiting.
struct ShmControl {
  uint64_t magic;
  std::atomic<uint32_t> abortFlag;
  int32_t abortRank;
  int32_t abortCode;
  char abortMessage[512];
  // One per local rank (the array continues past the struct): the pid, or
  // its negation once that rank destroyed its communicator.
  std::atomic<int32_t> pids[1];
};

struct RegistrationEntry;  // a registered buffer, in the node's segment

struct ShmConfig {
  int nChannels = 1;
  size_t slotBytes = 128 * 1024;
  int nSlots = 8;
  // Try cross-memory attach (process_vm_readv) between the node's processes;
  // it is used only where every local rank could read every other.
  bool crossMemoryAttach = true;
};

// Besides its connectors, the node's shared state: the first fatal error,
// which ranks are still there, and each rank's progress.
class ShmTransport : public Transport {
 public:
  // Collective over the bootstrap: localRanks are the ranks sharing this node
  // (sorted), rank is ours.
  static Result<std::unique_ptr<ShmTransport>> create(Bootstrap& bootstrap, const std::vector<int>& localRanks,
                                                      int rank, const ShmConfig& config);
  ~ShmTransport() override;

  const char* name() const override { return "shm"; }
  bool crossesNodes() const override { return false; }
  SendConnector* sendTo(int peer, int channel) const override;
  RecvConnector* recvFrom(int peer, int channel) const override;
  const ShmConfig& config() const { return config_; }

  // Records the first fatal error of the node and wakes every waiting rank.
  void reportFatal(int rank, weftResult_t code, const std::string& message);
  // The node's fatal error reported by another rank, if any.
  bool peerFailed(Status* status) const;
  // Checks that peer, which this rank is waiting for, is still there: its
  // process alive and its communicator not destroyed.
  Status checkPeerAlive(int peer) const override;
  bool sameProcess(int peer) const override;
  // Cross-memory attach works between every pair of this node's ranks.
  bool copiesByAddress(int peer) const override;
  // Every pair of this node's ranks copies by cross-memory attach (each rank
  // a process of its own); the same answer on every local rank.
  bool everyPeerCopiesByAddress() const;
  Status copyFromPeer(int peer, void* dst, uint64_t address, size_t bytes) const override;
  // Registered buffers in shared host memory (weftCommRegister): each rank's
  // table of them lives in the node's segment, where its peers look up an
  // address they were sent and map the allocation holding it.
  bool mapsRegistered(int peer) const override;
  Result<const void*> mappedAddress(int peer, uint64_t address, size_t bytes) const override;
  // Enters [base, base + bytes), inside allocation, in this rank's table:
  // the entry's index, or -1 when the table is full.
  int publishRegistration(const void* base, size_t bytes, const SharedAllocation& allocation);
  void withdrawRegistration(int entry);
  bool registered(const void* p, size_t bytes) const;
  // This rank's executor failed: from now on it reads no peer's buffer.
  void markStopped();
  // Peer (of this node) will not read this rank's buffers any more: it
  // failed or destroyed its communicator. A sender by address that fails
  // waits for this (or for its slots to drain) before its call returns.
  bool readsNoMore(int peer) const override;
  // Marks this rank as gone (communicator destroyed) for peers still waiting.
  void markDeparted();
  // Each local rank's last completed call (a CallRef), in the node's shared
  // memory: its peers can read it even when the rank itself no longer
  // answers. progressOf returns nullptr for a rank of another node.
  std::atomic<uint64_t>* progressOf(int rank) const;
  const std::vector<int>& localRanks() const { return localRanks_; }

 private:
  ShmTransport() = default;
  size_t fifoOffset(int fromLocal, int toLocal, int channel) const;

  ShmConfig config_;
  int rank_ = -1;
  pid_t pid_ = 0;  // this process (getpid is a system call, and sameProcess runs every step)
  std::vector<int> localRanks_;
  std::vector<int> localIndex_;  // rank -> local index, -1 if remote
  ShmSegment segment_;
  ShmControl* control_ = nullptr;
  std::atomic<uint64_t>* progress_ = nullptr;           // per local rank, after the pids
  std::atomic<uint32_t>* stopped_ = nullptr;            // per local rank, after the progress: its executor failed
  bool crossMemoryAttach_ = false;                      // every local rank read every other's probe
  bool mapsShared_ = false;                             // every local rank mapped every other's probe memfd
  bool distinctProcesses_ = false;                      // no two local ranks share a process
  RegistrationEntry* registrations_ = nullptr;          // kMaxRegistrations per local rank
  RegistrationEntry* registrationsOf(int local) const;  // that local rank's table
  // Peers' allocations this rank mapped: (local rank, allocation id) -> where.
  struct Mapping {
    char* base;
    size_t bytes;
  };
  mutable std::mutex mappingsMutex_;
  mutable std::map<std::pair<int, uint64_t>, Mapping> mappings_;
  size_t fifoBytes_ = 0;
  size_t fifoBase_ = 0;
  std::vector<std::unique_ptr<SendConnector>> sends_;  // [channel * nranks + peer]
  std::vector<std::unique_ptr<RecvConnector>> recvs_;
  int nranksTotal_ = 0;
};

}  // namespace weft
