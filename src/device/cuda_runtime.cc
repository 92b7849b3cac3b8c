// The CUDA runtime under the device executor: device memory by cudaMalloc,
// mapped pinned host memory for what host and device both read, launches of
// kernel.cu's interpreter, events for completion, and CUDA IPC handles for
// FIFOs shared with ranks in other processes (ranks that are threads of one
// process use the pointer as it is).
#include <cuda_runtime.h>
#include <unistd.h>

#include <cstring>

#include "core/logging.h"
#include "device/kernel.h"
#include "device/runtime.h"

namespace weft::device {
namespace {

Status cudaFailure(cudaError_t rc, const char* what, int device) {
  cudaGetLastError();
  return WEFT_ERROR(weftUnhandledCudaError, "cudaDevice %d: %s failed: %s (%s)", device, what, cudaGetErrorString(rc),
                    cudaGetErrorName(rc));
}

#define WEFT_CUDA(call, what)                                       \
  do {                                                              \
    cudaError_t rc_ = (call);                                       \
    if (rc_ != cudaSuccess) return cudaFailure(rc_, what, device_); \
  } while (0)

class CudaRuntime final : public Runtime {
 public:
  explicit CudaRuntime(int device) : device_(device) {}
  const char* name() const override { return "CUDA"; }
  int device() const override { return device_; }

  Result<void*> allocate(size_t bytes) override {
    WEFT_CUDA(cudaSetDevice(device_), "cudaSetDevice");
    void* p = nullptr;
    WEFT_CUDA(cudaMalloc(&p, std::max<size_t>(bytes, 1)), "cudaMalloc");
    WEFT_CUDA(cudaMemset(p, 0, std::max<size_t>(bytes, 1)), "cudaMemset");
    return p;
  }
  void free(void* p) override {
    if (p != nullptr) cudaFree(p);
  }
  Result<void*> allocateShared(size_t bytes) override {
    WEFT_CUDA(cudaSetDevice(device_), "cudaSetDevice");
    void* p = nullptr;
    WEFT_CUDA(cudaHostAlloc(&p, std::max<size_t>(bytes, 1), cudaHostAllocMapped | cudaHostAllocPortable),
              "cudaHostAlloc");
    memset(p, 0, std::max<size_t>(bytes, 1));
    return p;  // unified addressing: the same pointer on the device
  }
  void freeShared(void* p) override {
    if (p != nullptr) cudaFreeHost(p);
  }
  Status toDevice(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return Status::ok();
    WEFT_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to the device");
    return Status::ok();
  }
  Status toHost(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return Status::ok();
    WEFT_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
    return Status::ok();
  }

  Status checkBuffer(const void* p, size_t bytes) const override {
    cudaPointerAttributes attributes{};
    cudaError_t rc = cudaPointerGetAttributes(&attributes, p);
    if (rc != cudaSuccess) {
      cudaGetLastError();
      return WEFT_ERROR(weftInvalidArgument, "%p is not memory CUDA knows (%s)", p, cudaGetErrorString(rc));
    }
    if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged)
      return WEFT_ERROR(weftInvalidArgument, "%p (%zu bytes) is %s memory, not memory of cudaDevice %d", p, bytes,
                        attributes.type == cudaMemoryTypeHost ? "pinned host" : "unregistered host", device_);
    if (attributes.type == cudaMemoryTypeDevice && attributes.device != device_)
      return WEFT_ERROR(weftInvalidArgument, "%p is memory of cudaDevice %d, but this communicator uses cudaDevice %d",
                        p, attributes.device, device_);
    return Status::ok();
  }
  Status checkStream(void* stream) const override {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    cudaError_t rc = cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &capture);
    if (rc != cudaSuccess) {
      cudaGetLastError();
      return WEFT_ERROR(weftInvalidArgument, "stream %p is not a usable CUDA stream: %s", stream,
                        cudaGetErrorString(rc));
    }
    if (capture == cudaStreamCaptureStatusInvalidated)
      return WEFT_ERROR(weftInvalidUsage, "stream %p is in a CUDA graph capture that has been invalidated", stream);
    return Status::ok();
  }
  bool capturing(void* stream) const override {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(static_cast<cudaStream_t>(stream), &capture) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return capture == cudaStreamCaptureStatusActive;
  }
  Result<void*> createStream() override {
    WEFT_CUDA(cudaSetDevice(device_), "cudaSetDevice");
    cudaStream_t stream = nullptr;
    WEFT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    return static_cast<void*>(stream);
  }
  void destroyStream(void* stream) override { cudaStreamDestroy(static_cast<cudaStream_t>(stream)); }
  Status orderAfterNullStream(void* stream) override {
    cudaEvent_t event = nullptr;
    WEFT_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    cudaError_t rc = cudaEventRecord(event, nullptr);
    if (rc == cudaSuccess) rc = cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), event, 0);
    cudaEventDestroy(event);  // released once the wait has used it
    WEFT_CUDA(rc, "ordering after the NULL stream");
    return Status::ok();
  }

  Status launch(const Work* work, int blocks, void* stream) override {
    WEFT_CUDA(cudaSetDevice(device_), "cudaSetDevice");
    WEFT_CUDA(launchGroupKernel(work, blocks, static_cast<cudaStream_t>(stream)), "launching the group kernel");
    return Status::ok();
  }
  Result<Event> record(void* stream) override {
    cudaEvent_t event = nullptr;
    WEFT_CUDA(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    WEFT_CUDA(cudaEventRecord(event, static_cast<cudaStream_t>(stream)), "cudaEventRecord");
    return Event{event, 0};
  }
  Status streamWait(void* stream, const Event& event) override {
    WEFT_CUDA(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event.handle), 0),
              "cudaStreamWaitEvent");
    return Status::ok();
  }
  Result<bool> done(const Event& event) override {
    cudaError_t rc = cudaEventQuery(static_cast<cudaEvent_t>(event.handle));
    if (rc == cudaSuccess) return true;
    if (rc == cudaErrorNotReady) {
      cudaGetLastError();
      return false;
    }
    return cudaFailure(rc, "the group kernel", device_);
  }
  void releaseEvent(const Event& event) override { cudaEventDestroy(static_cast<cudaEvent_t>(event.handle)); }

  Result<MemoryHandle> exportMemory(void* p) override {
    MemoryHandle handle = MemoryHandle::ofPointer(p, 2);
    cudaIpcMemHandle_t ipc;
    WEFT_CUDA(cudaIpcGetMemHandle(&ipc, p), "cudaIpcGetMemHandle");
    static_assert(sizeof(ipc) <= sizeof(handle.ipc));
    memcpy(handle.ipc, &ipc, sizeof(ipc));
    return handle;
  }
  void flushRemoteWrites() override {
    if (cudaSetDevice(device_) != cudaSuccess ||
        cudaDeviceFlushGPUDirectRDMAWrites(cudaFlushGPUDirectRDMAWritesTargetCurrentDevice,
                                           cudaFlushGPUDirectRDMAWritesToOwner) != cudaSuccess)
      cudaGetLastError();  // not supported: the writes are ordered already
  }
  Result<MemoryHandle> exportRange(const void* p, size_t bytes) override {
    // The cudaMalloc allocation holding p: CUDA IPC hands out whole
    // allocations, by their start (the driver's cuMemGetAddressRange).
    using GetRange = int (*)(unsigned long long* base, size_t* size, unsigned long long address);
    static GetRange getRange = [] {
      void* fn = nullptr;
      cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
      if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000, cudaEnableDefault, &found) !=
              cudaSuccess ||
          found != cudaDriverEntryPointSuccess) {
        cudaGetLastError();
        return static_cast<GetRange>(nullptr);
      }
      return reinterpret_cast<GetRange>(fn);
    }();
    if (getRange == nullptr)
      return WEFT_ERROR(weftUnhandledCudaError, "cudaDevice %d: the driver has no cuMemGetAddressRange", device_);
    WEFT_CUDA(cudaSetDevice(device_), "cudaSetDevice");
    unsigned long long base = 0;
    size_t size = 0;
    if (getRange(&base, &size, reinterpret_cast<unsigned long long>(p)) != 0 ||
        reinterpret_cast<unsigned long long>(p) - base + bytes > size)
      return WEFT_ERROR(weftInvalidArgument, "%p (%zu bytes) is not inside one device allocation of cudaDevice %d", p,
                        bytes, device_);
    void* start = reinterpret_cast<void*>(base);
    MemoryHandle handle = MemoryHandle::ofPointer(start, 2);
    cudaIpcMemHandle_t ipc;
    WEFT_CUDA(cudaIpcGetMemHandle(&ipc, start), "cudaIpcGetMemHandle (managed or host memory cannot be shared)");
    memcpy(handle.ipc, &ipc, sizeof(ipc));
    handle.bytes = size;
    return handle;
  }
  Result<void*> importMemory(const MemoryHandle& handle) override {
    if (handle.pid == getpid()) return reinterpret_cast<void*>(handle.address);
    cudaIpcMemHandle_t ipc;
    memcpy(&ipc, handle.ipc, sizeof(ipc));
    void* p = nullptr;
    WEFT_CUDA(cudaSetDevice(device_), "cudaSetDevice");
    WEFT_CUDA(cudaIpcOpenMemHandle(&p, ipc, cudaIpcMemLazyEnablePeerAccess), "cudaIpcOpenMemHandle");
    return p;
  }
  void closeImported(void* p) override { cudaIpcCloseMemHandle(p); }
  bool reachesPeer(const std::string& peerBusId, int) const override {
    int peer = -1;
    if (cudaDeviceGetByPCIBusId(&peer, peerBusId.c_str()) != cudaSuccess) {
      cudaGetLastError();
      return false;  // not visible to this process: no peer access to it
    }
    if (peer == device_) return true;
    int can = 0;
    if (cudaDeviceCanAccessPeer(&can, device_, peer) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return can != 0;
  }

 protected:
  Status registerHost(void* p, size_t bytes) override {
    WEFT_CUDA(cudaSetDevice(device_), "cudaSetDevice");
    WEFT_CUDA(cudaHostRegister(p, bytes, cudaHostRegisterPortable | cudaHostRegisterMapped), "cudaHostRegister");
    void* onDevice = nullptr;
    cudaError_t rc = cudaHostGetDevicePointer(&onDevice, p, 0);
    if (rc != cudaSuccess || onDevice != p) {
      cudaGetLastError();
      cudaHostUnregister(p);
      return WEFT_ERROR(weftSystemError,
                        "host memory at %p is at %p on device %d (unified addressing expected): cannot stage there", p,
                        onDevice, device_);
    }
    return Status::ok();
  }
  void unregisterHost(void* p) override { cudaHostUnregister(p); }

 private:
  int device_;
};

}  // namespace

Result<std::shared_ptr<Runtime>> cudaRuntime(int ordinal) { return std::shared_ptr<Runtime>(new CudaRuntime(ordinal)); }

}  // namespace weft::device
