// The CUDA kernel of the device executor (kernel.cu).
#pragma once

#include <cuda_runtime.h>

#include "device/work.h"

namespace weft::device {

constexpr int kKernelThreads = 512;
cudaError_t launchGroupKernel(const Work* work, int blocks, cudaStream_t stream);

}  // namespace weft::device
