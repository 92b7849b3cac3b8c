// The net transport: connectors between ranks on different nodes, over a
// net plugin, driven by a proxy.
//
// Each connector owns a FIFO of slots in host memory, registered with the
// plugin. The executor fills a slot and bumps tail exactly as with shared
// memory; the proxy posts an isend for every filled slot and frees the slot
// when the send completes. On the receiving side the proxy keeps an irecv
// posted for every free slot and bumps the arrival counter the executor
// polls. A slot travels as one message: its 64-byte header line (the call's
// description, checked by the receiver) followed by the payload.
//
// The proxy is a thread per communicator. A rank that waits on a connector
// also drives that connector itself (a try-lock, so never both at once):
// a message then leaves and arrives without a thread hand-off, which on
// few cores is most of a small message's latency. The proxy thread leaves
// connectors alone while their owner drives them, and sleeps when no slot
// is in flight and nobody waits.
#pragma once

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "transports/connector.h"
#include "transports/net/net_plugin.h"
#include "transports/transport.h"

namespace weft {

struct NetConfig {
  int nChannels = 1;
  size_t slotBytes = 128 * 1024;
  int nSlots = 8;
  uint64_t timeoutNanos = 0;
  int numaNode = -1;   // of this rank, to pick the nearest device
  int localIndex = 0;  // among the ranks of this node, to spread over devices
  // The CPUs the proxy thread runs on (those of the rank's device's NUMA
  // node), when bindProxy.
  bool bindProxy = false;
  cpu_set_t proxyCpus{};
  // GPU communicators: slots in device memory that the NIC reads and writes
  // (GPUDirect RDMA), when wanted and the plugin's device takes device
  // pointers (WEFT_NET_PTR_CUDA). The kernel fills and drains them itself;
  // the host never touches their bytes. They come from allocateDeviceSlots
  // (freed by freeDeviceSlots), deviceSlotCount per connection, and a
  // received slot is made visible to the device by the plugin's iflush, then
  // flushDeviceWrites.
  bool wantDeviceSlots = false;
  int deviceSlotCount = 4;
  std::function<void*(size_t)> allocateDeviceSlots;
  std::function<void(void*)> freeDeviceSlots;
  std::function<void()> flushDeviceWrites;
};

class NetConnection;

class NetTransport : public Transport {
 public:
  // Collective over the bootstrap: every rank calls it, remote[r] is true
  // for ranks on other nodes (this rank connects to each of them on every
  // channel, in both directions).
  static Result<std::unique_ptr<NetTransport>> create(Bootstrap& bootstrap, const std::vector<bool>& remote, int rank,
                                                      const NetConfig& config, const std::atomic<bool>* abortFlag);
  ~NetTransport() override;

  const char* name() const override { return "net"; }
  bool crossesNodes() const override { return true; }
  SendConnector* sendTo(int peer, int channel) const override;
  RecvConnector* recvFrom(int peer, int channel) const override;
  // An error naming peer and its address when a connection with it broke.
  Status checkPeerAlive(int peer) const override;
  // Closes every connection (after a fatal error) so that peers waiting on
  // this rank fail at once instead of at their timeout.
  void abortConnections() override;

  // Wakes the proxy thread (a slot was posted, or someone waits).
  void kick();
  // Whether the slots are in device memory (NetConfig::wantDeviceSlots,
  // and the plugin's device takes them).
  bool deviceSlots() const { return config_.wantDeviceSlots; }

 private:
  NetTransport() = default;
  void proxyLoop();

  const weftNet_v1_t* plugin_ = nullptr;
  int device_ = 0;
  int rank_ = -1;
  int nranks_ = 0;
  NetConfig config_;
  std::vector<std::unique_ptr<NetConnection>> sends_;  // [channel * nranks + peer]
  std::vector<std::unique_ptr<NetConnection>> recvs_;
  std::vector<NetConnection*> all_;
  std::vector<std::unique_ptr<SendConnector>> sendConnectors_;  // what the executor sees
  std::vector<std::unique_ptr<RecvConnector>> recvConnectors_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> abort_{false};
  std::atomic<bool> sleeping_{false};
  std::mutex sleepMutex_;
  std::condition_variable sleepWake_;
  std::thread proxy_;
};

}  // namespace weft
