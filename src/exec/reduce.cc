#include "exec/reduce.h"

namespace weft {
namespace generic { const ReduceKernels& kernels(); }
#if defined(WEFT_HAVE_AVX2_KERNELS)
namespace avx2 { const ReduceKernels& kernels(); }
#endif

const ReduceKernels& genericReduceKernels() { return generic::kernels(); }

const ReduceKernels* avx2ReduceKernels() {
#if defined(WEFT_HAVE_AVX2_KERNELS)
  return &avx2::kernels();
#else
  return nullptr;
#endif
}

const ReduceKernels& reduceKernels() {
  static const ReduceKernels& chosen = []() -> const ReduceKernels& {
#if defined(WEFT_HAVE_AVX2_KERNELS)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c")) return avx2::kernels();
#endif
    return generic::kernels();
  }();
  return chosen;
}

}  // namespace weft
