// The device runtime under the device executor: memory, launches and
// completion on one device. Two implementations: the CUDA runtime
// (cuda_runtime.cc, builds with CUDA), and the emulated device (emulated.cc,
// every build), where device memory is host memory the emulated allocator
// hands out, a launch runs each thread block of the kernel as a host thread,
// a stream runs its launches in order on a thread of its own, and memory
// handles exchanged between ranks are pointers valid within the process.
// WEFT_DEVICE=emulated selects the emulated device for GPU communicators.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "device/work.h"

namespace weft::device {

// A point in a stream's work, to wait for.
struct Event {
  void* handle = nullptr;  // cudaEvent_t, or the emulated stream
  uint64_t ticket = 0;     // emulated: the launch's number in its stream
};

// What a rank publishes so that a peer can map a device allocation of its.
struct MemoryHandle {
  int32_t pid = 0;
  uint32_t kind = 0;     // 1: emulated pointer, 2: CUDA IPC handle, 3: host memory other processes map
  uint64_t address = 0;  // the exporter's address (same process: usable as it is)
  char ipc[64] = {};     // cudaIpcMemHandle_t
  int32_t fd = -1;       // kind 3: the exporter's memfd (core/shared_host_memory.h)
  uint32_t pad = 0;
  uint64_t bytes = 0;  // kind 3: the allocation's mapped size

  // This process's pointer p, of the given kind (no IPC handle).
  static MemoryHandle ofPointer(void* p, uint32_t kind);
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual const char* name() const = 0;
  virtual int device() const = 0;

  // Zeroed device memory.
  virtual Result<void*> allocate(size_t bytes) = 0;
  virtual void free(void* p) = 0;
  // weftMemAlloc's device memory: as allocate, and on the emulated device
  // shareable with other processes (a memfd), so that a registered buffer
  // can be read by peers there as a GPU's is over CUDA IPC. free releases it.
  virtual Result<void*> allocateUser(size_t bytes) { return allocate(bytes); }
  // Host memory the device reads and writes (launch descriptions, fault
  // records, the abort flag).
  virtual Result<void*> allocateShared(size_t bytes) = 0;
  virtual void freeShared(void* p) = 0;
  // Synchronous copies between host and device memory.
  virtual Status toDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual Status toHost(void* dst, const void* src, size_t bytes) = 0;

  // weftInvalidArgument unless [p, p + bytes) is memory of this device.
  virtual Status checkBuffer(const void* p, size_t bytes) const = 0;
  // weftInvalidArgument unless stream can carry this device's work.
  virtual Status checkStream(void* stream) const = 0;

  // A stream of the runtime's own: the executor puts work posted with a NULL
  // stream on one, per communicator. On CUDA the device's NULL stream is
  // one for all the process's threads, and ranks sharing a GPU would
  // serialise on it and wait for each other for ever; the communicator's
  // stream first waits for what the NULL stream holds (orderAfterNullStream).
  virtual Result<void*> createStream() = 0;
  virtual void destroyStream(void* stream) = 0;
  virtual Status orderAfterNullStream(void* stream) = 0;

  // Runs `blocks` blocks of the interpreter over work (in shared memory) on
  // stream, after everything enqueued there before.
  virtual Status launch(const Work* work, int blocks, void* stream) = 0;
  virtual Result<Event> record(void* stream) = 0;
  // Whether stream is being captured into a CUDA graph: its launches run
  // when the graph is replayed, as often as it is, and never now.
  virtual bool capturing(void* stream) const = 0;
  // Work enqueued on stream after this waits for event.
  virtual Status streamWait(void* stream, const Event& event) = 0;
  virtual Result<bool> done(const Event& event) = 0;
  virtual void releaseEvent(const Event& event) = 0;

  // Makes what a NIC wrote into this device's memory (GPUDirect RDMA)
  // visible to work launched after it (cudaDeviceFlushGPUDirectRDMAWrites).
  virtual void flushRemoteWrites() {}

  // Sharing allocations with peers.
  virtual Result<MemoryHandle> exportMemory(void* p) = 0;
  // The allocation holding [p, p + bytes), as a handle a rank of another
  // process of the node imports with importRange (handle.address: the
  // allocation's start here): a CUDA IPC handle of the cudaMalloc allocation,
  // or the emulated device's memfd (weftMemAlloc's memory only). An error
  // says why it cannot be shared.
  virtual Result<MemoryHandle> exportRange(const void* p, size_t bytes) = 0;
  // A peer's exportRange mapped here (its allocation's start), and released.
  Result<void*> importRange(const MemoryHandle& handle);
  void closeRange(void* p, const MemoryHandle& handle);
  virtual Result<void*> importMemory(const MemoryHandle& handle) = 0;
  virtual void closeImported(void* p) = 0;
  // Whether this device can write device memory of the peer's (a rank of
  // process peerPid on the GPU with that bus id), so that FIFOs may live
  // there: the same process on the emulated device; peer access (or the
  // same GPU) with CUDA.
  virtual bool reachesPeer(const std::string& peerBusId, int peerPid) const = 0;

  // Host memory that other processes of the node map and that every device
  // of the node reads and writes (pinned and mapped with CUDA): the FIFOs
  // of ranks that stage through host memory. Zeroed.
  Result<void*> allocateInterprocess(size_t bytes);
  void freeInterprocess(void* p);
  Result<MemoryHandle> exportInterprocess(void* p) const;
  // The peer's allocation mapped here (its own pointer within the process);
  // closeInterprocess with the same handle releases it.
  Result<void*> importInterprocess(const MemoryHandle& handle);
  void closeInterprocess(void* p, const MemoryHandle& handle);

 protected:
  // Lets this device reach host memory mapped here (cudaHostRegister).
  virtual Status registerHost(void* p, size_t bytes) = 0;
  virtual void unregisterHost(void* p) = 0;
};

// The runtime for a communicator on device `ordinal`: emulated when
// WEFT_DEVICE=emulated, CUDA otherwise (weftInvalidUsage in a build
// without CUDA).
Result<std::shared_ptr<Runtime>> runtimeFor(int ordinal);
// Whether WEFT_DEVICE selects the emulated device.
bool emulatedDeviceSelected();
// The emulated device's runtime for ordinal (one per ordinal, process-wide).
std::shared_ptr<Runtime> emulatedRuntime(int ordinal);
// The CUDA runtime (cuda_runtime.cc), or weftInvalidUsage without CUDA.
Result<std::shared_ptr<Runtime>> cudaRuntime(int ordinal);

}  // namespace weft::device
