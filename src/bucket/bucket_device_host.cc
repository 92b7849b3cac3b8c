// Host memory: storage from the heap, copies with memcpy, and launches on
// the communicator's host queue, which runs them in order.
#include <cstdlib>
#include <cstring>

#include "bucket/bucket_device.h"
#include "bucket/bucket_layout.h"

namespace weft {
namespace {

class HostBucketDevice : public BucketDevice {
 public:
  Result<void*> allocate(size_t bytes) override {
    size_t rounded = (bytes + kBucketAlignBytes - 1) / kBucketAlignBytes * kBucketAlignBytes;
    void* storage = std::aligned_alloc(kBucketAlignBytes, rounded == 0 ? kBucketAlignBytes : rounded);
    if (storage == nullptr)
      return WEFT_ERROR(weftSystemError, "out of host memory for a gradient bucket of %zu bytes", bytes);
    memset(storage, 0, rounded);
    return storage;
  }
  void release(void* storage) override { std::free(storage); }
  Status copy(void* dst, const void* src, size_t bytes) override {
    if (bytes > 0) memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status readBack(void* host, const void* storage, size_t bytes) override { return copy(host, storage, bytes); }
  Result<weftStream_t> beforeLaunch() override { return static_cast<weftStream_t>(nullptr); }
  Status afterLaunches() override { return Status::ok(); }
  bool hostQueue() const override { return true; }
};

}  // namespace

std::unique_ptr<BucketDevice> hostBucketDevice() { return std::make_unique<HostBucketDevice>(); }

}  // namespace weft
