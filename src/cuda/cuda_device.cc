#include "cuda/cuda_device.h"

#include <cuda_runtime.h>

namespace weft {

bool builtWithCuda() { return true; }

Result<CudaDeviceInfo> queryCudaDevice(int ordinal) {
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) {
    cudaGetLastError();  // clear it: the caller may go on without a GPU
    return WEFT_ERROR(weftUnhandledCudaError, "cudaDevice=%d: cudaGetDeviceCount failed: %s (%s)", ordinal,
                      cudaGetErrorString(rc), cudaGetErrorName(rc));
  }
  if (ordinal < 0 || ordinal >= count)
    return WEFT_ERROR(weftInvalidArgument, "cudaDevice=%d: this process sees %d CUDA device(s)", ordinal, count);
  CudaDeviceInfo info;
  info.ordinal = ordinal;
  char busId[32] = {0};
  rc = cudaDeviceGetPCIBusId(busId, sizeof(busId), ordinal);
  if (rc != cudaSuccess)
    return WEFT_ERROR(weftUnhandledCudaError, "cudaDevice=%d: cudaDeviceGetPCIBusId failed: %s", ordinal,
                      cudaGetErrorString(rc));
  info.busId = busId;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, ordinal) == cudaSuccess) {
    info.name = prop.name;
    info.computeMajor = prop.major;
    info.computeMinor = prop.minor;
  }
  return info;
}

}  // namespace weft
