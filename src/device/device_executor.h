// The device executor: runs a device communicator's groups as launches of
// the device plan interpreter (interpreter.h) on the caller's stream, one
// launch per group, one thread block per channel (and one per peer and
// direction of the group's sends and receives). Calls return once their
// launch is enqueued; wait() is a stream-ordered completion, polled.
//
// Connections: every rank allocates, in its own device memory, a FIFO from
// each peer on each channel (work.h's Fifo), exports the allocation
// (Runtime::exportMemory: a pointer within the process on the emulated
// device, a CUDA IPC handle between processes on a GPU), and maps its
// peers'; a pair that cannot (or should not) write each other's device
// memory keeps its FIFOs in host memory both processes map instead
// (fifo_route.h); each link's sent/received counts live in device memory and
// persist between launches. Plans are copied to device memory once, when
// first used, and kept as long as the communicator (the tuner keeps them).
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <utility>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "device/runtime.h"
#include "topology/machine.h"
#include "exec/executor.h"

namespace weft {

struct DeviceExecutorConfig {
  size_t slotBytes = 131072;      // simple protocol payload per slot
  size_t llSlotBytes = 8192;      // LL payload per slot
  int64_t llThreshold = -1;       // operations up to this many bytes use LL; -1: as the tuner chose
  int forceProtocol = -1;         // 0 simple, 1 LL, -1 as the tuner chose (or by llThreshold)
  bool samePeerProcess = true;    // every peer is a thread of this process
  bool stageThroughHost = false;  // WEFT_P2P_DISABLE: every FIFO in host memory
  // Every rank's GPU (PCI bus id) and process, and this node's machine (null:
  // unknown), from which each pair's FIFOs are placed (fifo_route.h).
  std::vector<std::string> busIds;
  std::vector<int> pids;
  std::shared_ptr<const MachineTopology> topo;
};

// Whether an operation uses the LL protocol: WEFT_DEVICE_PROTOCOL
// (forceProtocol), else WEFT_LL_THRESHOLD when set, else the tuner's choice
// (op.lowLatency).
bool usesLowLatency(const DeviceExecutorConfig& config, const OpDesc& op);

class DeviceExecutor final : public Executor {
 public:
  static Result<std::unique_ptr<DeviceExecutor>> create(const ExecutorContext& context,
                                                        std::shared_ptr<device::Runtime> runtime, Bootstrap& bootstrap,
                                                        const DeviceExecutorConfig& config);
  ~DeviceExecutor() override;

  uint64_t submit(const OpDesc* ops, size_t count) override;
  Status wait(uint64_t seq) override;
  bool test(uint64_t seq) const override;
  Status asyncError() const override;
  uint64_t submitted() const override;
  void stop() override;
  CallRef lastCompleted() const override;
  CallRef inProgress() const override;

  device::Runtime& runtime() { return *runtime_; }

  // weftCommRegister's device buffers. Ranks of other processes on this
  // node map what this rank registers (the allocation holding it, by CUDA
  // IPC or the emulated device's memfd) when they next launch, say where
  // in this rank's table of registered buffers (the board, host memory they
  // map), and from then on this rank's slots to them carry addresses in
  // their address space instead of data, as between threads. The entry
  // (for deregisterBuffer), or -1 when there is no such peer; an error when
  // the memory cannot be shared or the table is full.
  Result<int> registerBuffer(const void* p, size_t bytes);
  void deregisterBuffer(int entry);
  // Operations whose slots may go by address to a rank of another process
  // (a count, for tests).
  uint64_t crossProcessAddressOps() const { return crossProcessAddressOps_.load(std::memory_order_relaxed); }
  // Net links whose slots are the connection's own in device memory
  // (GPUDirect RDMA), and those staged through host memory (tests).
  int deviceMemoryNetLinks() const;
  int stagedNetLinks() const;

 private:
  struct DevicePlan {
    Step* steps = nullptr;
    uint32_t* channelStart = nullptr;
  };
  struct Launch {
    uint64_t seq = 0;
    device::Event event;
    bool launched = false;
    void* work = nullptr;  // shared memory: Work, ops, block lists, fault record
    size_t workBytes = 0;
    device::FaultRecord* fault = nullptr;
    std::vector<std::pair<void*, size_t>> premul;  // device buffers of PreMulSum inputs, and their sizes
    std::vector<OpDesc> ops;
    CallRef call = kNoCall;
  };

  DeviceExecutor(const ExecutorContext& context, std::shared_ptr<device::Runtime> runtime,
                 const DeviceExecutorConfig& config);
  Status connect(Bootstrap& bootstrap);
  Result<DevicePlan> devicePlan(const Plan* plan);
  Status launchGroup(const OpDesc* ops, size_t count, Launch* launch);
  // Completes the launches at the front that are done (all up to seq when
  // blocking); under mutex_.
  Status retire(uint64_t seq, bool blocking) const;
  Status finish(Launch& launch) const;
  void checkReplays() const;
  void fail(const Status& status) const;
  void release(Launch& launch) const;
  // A buffer of at least `bytes` from a spare pool (or a new one).
  Result<void*> takeSpare(std::multimap<size_t, void*>& spare, size_t* bytes, bool shared);

  ExecutorContext context_;
  std::shared_ptr<device::Runtime> runtime_;
  DeviceExecutorConfig config_;
  device::FifoShape shape_;
  int maxBlocks_ = 1;

  char* fifos_ = nullptr;        // this rank's FIFOs from peers that write device memory
  char* hostFifos_ = nullptr;    // ... from peers that stage through host memory
  std::vector<void*> imported_;  // peers' device FIFO areas mapped here
  std::vector<std::pair<void*, device::MemoryHandle>> importedHost_;  // peers' host FIFO areas

  // Peers on other nodes: the kernel's FIFOs to and from such a peer are in
  // host memory of this process that the device reads and writes, and a
  // thread of the executor (the net bridge) moves their slots to and from
  // the net transport's connectors: what the kernel posts to `out` goes
  // out as a slot of the peer's connector; what arrives is written into
  // `in` and posted there.
  struct NetLink {
    SendConnector* to = nullptr;
    RecvConnector* from = nullptr;
    device::Fifo* out = nullptr;  // the kernel sends here (link.send)
    device::Fifo* in = nullptr;   // the kernel receives here (link.recv)
    uint64_t forwarded = 0;       // slots of `out` handed to the connector
    uint64_t delivered = 0;       // slots posted into `in`
    // GPUDirect RDMA: the kernel's slots are the connection's own, in device
    // memory; the bridge passes counts and copies nothing.
    bool sendRing = false, recvRing = false;
  };
  bool pumpNet(NetLink& link);
  void bridgeNet();
  // A broken connection the bridge found (under bridgeMutex_): the kernels
  // are aborted and the calls fail with it instead of a timeout.
  mutable std::mutex bridgeMutex_;
  Status bridgeError_;
  std::vector<int> remotePeers_;
  char* netFifos_ = nullptr;  // shared memory: two FIFOs per remote peer and channel
  std::vector<NetLink> netLinks_;
  std::atomic<bool> netStop_{false};
  std::thread netBridge_;
  device::Link* links_ = nullptr;  // device memory [peer * maxChannels + channel]
  char* scratch_ = nullptr;        // device memory, maxBlocks_ * 4 scratch slots
  uint64_t* counters_ = nullptr;   // device memory: concurrentDone, orderedBarrier
  uint32_t* abortWord_ = nullptr;  // shared memory
  void* ownStream_ = nullptr;      // where NULL-stream work goes
  void* lastStream_ = nullptr;     // the stream of the last launch
  device::Event lastEvent_;
  bool haveLastEvent_ = false;
  std::map<const Plan*, DevicePlan> plans_;

  // Registered buffers (registerBuffer). board_: this rank's table, in host
  // memory the node's other processes map; peerBoards_[r]: rank r's, mapped
  // here, for ranks of other processes on this node (else null).
  bool samePidAs(int peer) const;  // peer is a thread of this process
  void mapPeerRegistrations();     // under mutex_
  // Where [p, p + bytes) of this rank lies in peer's address space minus
  // here, or device::kNoAddress where the peer cannot read it.
  int64_t addressDelta(int peer, const void* p, size_t bytes) const;
  char* board_ = nullptr;
  std::vector<char*> peerBoards_;
  std::vector<std::pair<void*, device::MemoryHandle>> importedBoards_;
  std::vector<uint64_t> seenBoardVersion_;
  struct MappedRegistration {
    uint64_t generation = 0;
    void* base = nullptr;
    device::MemoryHandle handle;
  };
  std::map<std::pair<int, int>, MappedRegistration> mappedRegistrations_;  // (peer, entry)
  uint64_t nextGeneration_ = 1;
  std::atomic<uint64_t> crossProcessAddressOps_{0};
  // Launch descriptions (shared memory) and PreMulSum buffers (device
  // memory) of launches captured into CUDA graphs, which may replay them
  // as long as the communicator lives.
  std::vector<void*> captured_;
  // Launch descriptions (shared memory) and PreMulSum buffers (device
  // memory) of retired launches, by size, for the next launches: a new one
  // per call would cost a cudaHostAlloc or cudaMalloc on every call, and
  // cudaFree waits for the whole device, where a peer sharing it may be
  // waiting for this rank's next launch.
  mutable std::multimap<size_t, void*> spareShared_;
  mutable std::multimap<size_t, void*> spareDevice_;
  std::vector<void*> capturedDevice_;
  std::vector<const device::FaultRecord*> capturedFaults_;

  mutable std::mutex mutex_;
  mutable std::deque<Launch> launches_;  // submitted, not yet retired, in order
  uint64_t submitted_ = 0;
  mutable uint64_t completed_ = 0;
  // Read without the mutex (the liveness service asks while a wait that
  // timed out holds it to explain who is silent).
  mutable std::atomic<CallRef> lastCompleted_{kNoCall};
  mutable std::atomic<CallRef> inProgress_{kNoCall};
  mutable Status error_;
  mutable bool failed_ = false;
  bool stopped_ = false;
};

}  // namespace weft
