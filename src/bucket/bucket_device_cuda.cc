// A GPU communicator's buckets: device memory, copies on the gradient
// stream, and launches on a communication stream of the bucketer's own that
// waits, by an event, for what the gradient stream had queued when the
// bucket filled. After the last bucket the gradient stream waits for the
// communication stream (the optimizer runs after it), and the host waits
// for the communication stream so that finish returns its errors.
#include <cuda_runtime.h>

#include "bucket/bucket_device.h"

namespace weft {
namespace {

Status cudaStatus(cudaError_t rc, const char* what, int device) {
  if (rc == cudaSuccess) return Status::ok();
  return WEFT_ERROR(weftUnhandledCudaError, "bucketer on cudaDevice %d: %s failed: %s (%s)", device, what,
                    cudaGetErrorString(rc), cudaGetErrorName(rc));
}

class CudaBucketDevice : public BucketDevice {
 public:
  CudaBucketDevice(int device, cudaStream_t gradient) : device_(device), gradient_(gradient) {}
  ~CudaBucketDevice() override {
    if (ready_ != nullptr) cudaEventDestroy(ready_);
    if (done_ != nullptr) cudaEventDestroy(done_);
    if (comm_ != nullptr) cudaStreamDestroy(comm_);
  }

  Status init() {
    WEFT_CHECK(cudaStatus(cudaSetDevice(device_), "cudaSetDevice", device_));
    WEFT_CHECK(cudaStatus(cudaStreamCreateWithFlags(&comm_, cudaStreamNonBlocking), "cudaStreamCreate", device_));
    WEFT_CHECK(cudaStatus(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "cudaEventCreate", device_));
    return cudaStatus(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming), "cudaEventCreate", device_);
  }

  Result<void*> allocate(size_t bytes) override {
    void* storage = nullptr;
    WEFT_CHECK(cudaStatus(cudaMalloc(&storage, bytes == 0 ? 64 : bytes), "cudaMalloc", device_));
    Status zeroed = cudaStatus(cudaMemset(storage, 0, bytes), "cudaMemset", device_);
    if (!zeroed.isOk()) {
      cudaFree(storage);
      return zeroed;
    }
    return storage;
  }
  void release(void* storage) override { cudaFree(storage); }
  Status copy(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0) return Status::ok();
    return cudaStatus(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, gradient_), "cudaMemcpyAsync", device_);
  }
  Status readBack(void* host, const void* storage, size_t bytes) override {
    return cudaStatus(cudaMemcpy(host, storage, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy", device_);
  }
  Result<weftStream_t> beforeLaunch() override {
    WEFT_CHECK(cudaStatus(cudaEventRecord(ready_, gradient_), "cudaEventRecord", device_));
    WEFT_CHECK(cudaStatus(cudaStreamWaitEvent(comm_, ready_, 0), "cudaStreamWaitEvent", device_));
    return static_cast<weftStream_t>(comm_);
  }
  Status afterLaunches() override {
    WEFT_CHECK(cudaStatus(cudaEventRecord(done_, comm_), "cudaEventRecord", device_));
    WEFT_CHECK(cudaStatus(cudaStreamWaitEvent(gradient_, done_, 0), "cudaStreamWaitEvent", device_));
    return cudaStatus(cudaStreamSynchronize(comm_), "cudaStreamSynchronize", device_);
  }
  bool hostQueue() const override { return false; }

 private:
  int device_;
  cudaStream_t gradient_;
  cudaStream_t comm_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  cudaEvent_t done_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<BucketDevice>> cudaBucketDevice(int cudaDevice, weftStream_t gradientStream) {
  auto device = std::make_unique<CudaBucketDevice>(cudaDevice, static_cast<cudaStream_t>(gradientStream));
  WEFT_CHECK(device->init());
  return std::unique_ptr<BucketDevice>(std::move(device));
}

}  // namespace weft
