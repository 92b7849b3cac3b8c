// A build without the CUDA parts: GPU communicators are refused, clearly.
#include "cuda/cuda_device.h"

namespace weft {

bool builtWithCuda() { return false; }

Result<CudaDeviceInfo> queryCudaDevice(int ordinal) {
  return WEFT_ERROR(weftInvalidUsage,
                    "cudaDevice=%d: this weft was built without CUDA (configure with WEFT_ENABLE_CUDA=ON and the "
                    "CUDA toolkit installed)",
                    ordinal);
}

}  // namespace weft
