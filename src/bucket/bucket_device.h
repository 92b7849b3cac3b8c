// Where a bucketer's storage lives and how its launches are ordered: host
// memory and the communicator's own queue, or a GPU with a communication
// stream ordered after the gradient-producing stream by events.
#pragma once

#include <cstddef>
#include <memory>

#include "core/status.h"
#include "weft/weft.h"

namespace weft {

class BucketDevice {
 public:
  virtual ~BucketDevice() = default;
  // Zeroed storage for a bucket, and its release.
  virtual Result<void*> allocate(size_t bytes) = 0;
  virtual void release(void* storage) = 0;
  // A gradient into or out of its bucket slot, ordered with the gradient's
  // producer (on the gradient stream for a GPU).
  virtual Status copy(void* dst, const void* src, size_t bytes) = 0;
  // A value back to the host once the communication is done (synchronous).
  virtual Status readBack(void* host, const void* storage, size_t bytes) = 0;
  // Called before each launch: orders the launch after everything the
  // program queued so far. Returns the stream to launch on (NULL: host).
  virtual Result<weftStream_t> beforeLaunch() = 0;
  // After the last launch of an iteration: the program's later work waits
  // for the communication, and the host waits for it too (so that finish
  // can report errors and figures).
  virtual Status afterLaunches() = 0;
  // Whether completion is seen through the communicator's sequence numbers
  // (host) rather than through afterLaunches (GPU).
  virtual bool hostQueue() const = 0;
};

std::unique_ptr<BucketDevice> hostBucketDevice();
// cudaDevice: the communicator's device; gradientStream: config.stream
// (NULL: the legacy default stream). Without the CUDA parts: an error.
Result<std::unique_ptr<BucketDevice>> cudaBucketDevice(int cudaDevice, weftStream_t gradientStream);

}  // namespace weft
