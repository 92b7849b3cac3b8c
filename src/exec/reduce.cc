#include "exec/reduce.h"

#if defined(WEFT_HAVE_AVX2_KERNELS)
#include <cpuid.h>
#endif

namespace weft {
namespace generic {
const ReduceKernels& kernels();
}
#if defined(WEFT_HAVE_AVX2_KERNELS)
namespace avx2 {
const ReduceKernels& kernels();
}
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
    // F16C from CPUID leaf 1 (ECX bit 29): not every compiler's
    // __builtin_cpu_supports knows its name.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
    if (__builtin_cpu_supports("avx2") && f16c) return avx2::kernels();
#endif
    return generic::kernels();
  }();
  return chosen;
}

}  // namespace weft
