// The CUDA device a GPU communicator's rank uses: whether it exists, its PCI
// bus id (to find it in the topology and tell ranks sharing it apart).
#pragma once

#include <string>

#include "core/status.h"

namespace weft {

struct CudaDeviceInfo {
  int ordinal = -1;
  std::string busId;  // as cudaDeviceGetPCIBusId writes it
  std::string name;
  int computeMajor = 0, computeMinor = 0;
};

// True when this build has the CUDA parts (WEFT_ENABLE_CUDA).
bool builtWithCuda();

// weftUnhandledCudaError when CUDA reports no device (the message carries
// CUDA's), weftInvalidArgument for an ordinal past the last device,
// weftInvalidUsage in a build without CUDA.
Result<CudaDeviceInfo> queryCudaDevice(int ordinal);

}  // namespace weft
