// Element-wise kernels of the CUDA executor: the same reductions as the host
// kernels (exec/reduce.h), bit for bit, for every type and op, moving 16
// bytes per thread per load where the pointers allow. fp16 and bf16 are
// reduced in native half-precision arithmetic; fp8 through float with
// saturating conversions, as on the host.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "weft/weft.h"

namespace weft::cuda {

// dst[i] = a[i] op b[i] for n elements (weftAvg reduces as a sum; divide
// once at the end). dst may alias a or b.
cudaError_t launchReduce(void* dst, const void* a, const void* b, size_t n, weftDataType_t type, weftRedOp_t op,
                         cudaStream_t stream);
// dst[i] /= divisor, for weftAvg's final write.
cudaError_t launchDivide(void* dst, size_t n, weftDataType_t type, int divisor, cudaStream_t stream);
// bytes from src to dst by 16-byte loads where aligned.
cudaError_t launchCopy(void* dst, const void* src, size_t bytes, cudaStream_t stream);

}  // namespace weft::cuda
