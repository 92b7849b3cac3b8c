// Element-wise reductions for every weft type and op, vectorised: the kernels
// are compiled once for any x86-64 (or other) CPU and once with AVX2/F16C, and
// the fastest the CPU supports is picked at start-up.
#pragma once

#include <cstddef>

#include "weft/weft.h"

namespace weft {

// dst[i] = a[i] op b[i] for n elements (weftAvg reduces as a sum; the
// division happens once, in the final step, through ScaleFn). dst may alias a
// or b.
using ReduceFn = void (*)(void* dst, const void* a, const void* b, size_t n);
// dst[i] = dst[i] / divisor, rounded once, for weftAvg's final write.
using DivideFn = void (*)(void* dst, size_t n, int divisor);

struct ReduceKernels {
  ReduceFn reduce[weftNumTypes][weftNumOps];
  DivideFn divide[weftNumTypes];
  const char* isa;  // "generic" or "avx2"
};

const ReduceKernels& reduceKernels();

inline ReduceFn reduceFunction(weftDataType_t type, weftRedOp_t op) { return reduceKernels().reduce[type][op]; }
inline DivideFn divideFunction(weftDataType_t type) { return reduceKernels().divide[type]; }

// Kernel tables per instruction set; the *Available functions say whether
// this build has them.
const ReduceKernels& genericReduceKernels();
const ReduceKernels* avx2ReduceKernels();  // nullptr when not built

}  // namespace weft
