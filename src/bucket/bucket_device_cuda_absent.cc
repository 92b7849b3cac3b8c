// A build without the CUDA parts has no GPU communicators to bucket for.
#include "bucket/bucket_device.h"

namespace weft {

Result<std::unique_ptr<BucketDevice>> cudaBucketDevice(int cudaDevice, weftStream_t) {
  return WEFT_ERROR(weftInvalidUsage,
                    "a bucketer on cudaDevice %d needs the CUDA parts, which this build of weft lacks", cudaDevice);
}

}  // namespace weft
