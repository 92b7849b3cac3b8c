#include "exec/reduce.h"

#include <algorithm>

#include "exec/copy.h"

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
#if defined(WEFT_HAVE_AVX512_KERNELS)
namespace avx512 {
const ReduceKernels& kernels();
}
namespace avx512fp16 {
void installNativeHalf(ReduceKernels& k);
}
#endif

const ReduceKernels& genericReduceKernels() { return generic::kernels(); }

const ReduceKernels* avx2ReduceKernels() {
#if defined(WEFT_HAVE_AVX2_KERNELS)
  static const bool kRuns = [] {
    __builtin_cpu_init();
    // F16C from CPUID leaf 1 (ECX bit 29): not every compiler's
    // __builtin_cpu_supports knows its name.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
    return __builtin_cpu_supports("avx2") && f16c;
  }();
  if (kRuns) return &avx2::kernels();
#endif
  return nullptr;
}

const ReduceKernels* avx512ReduceKernels() {
#if defined(WEFT_HAVE_AVX512_KERNELS)
  if (avx2ReduceKernels() == nullptr) return nullptr;  // F16C is needed too
  static const ReduceKernels* kTable = []() -> const ReduceKernels* {
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq"))
      return nullptr;
    static ReduceKernels table = avx512::kernels();
#if defined(WEFT_HAVE_AVX512FP16_KERNELS)
    // CPUID leaf 7, EDX bit 23: AVX512-FP16.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx & (1u << 23)) != 0)
      avx512fp16::installNativeHalf(table);
#endif
    return &table;
  }();
  return kTable;
#else
  return nullptr;
#endif
}

std::vector<const ReduceKernels*> availableReduceKernels() {
  std::vector<const ReduceKernels*> sets{&genericReduceKernels()};
  if (const ReduceKernels* k = avx2ReduceKernels()) sets.push_back(k);
  if (const ReduceKernels* k = avx512ReduceKernels()) sets.push_back(k);
  return sets;
}

const ReduceKernels& reduceKernels() {
  static const ReduceKernels& chosen = *availableReduceKernels().back();
  return chosen;
}

void reduceStreaming(ReduceFn fn, size_t typeBytes, void* dst, void* copy, const void* a, const void* b, size_t n) {
  // Chunks small enough to stay in the first-level cache between the
  // reduction that writes them and the streaming stores that read them.
  constexpr size_t kChunkBytes = 2048;
  alignas(64) char staging[kChunkBytes];
  size_t chunk = kChunkBytes / typeBytes;
  char* out = static_cast<char*>(dst);
  char* cached = static_cast<char*>(copy);
  const char* x = static_cast<const char*>(a);
  const char* y = static_cast<const char*>(b);
  for (size_t done = 0; done < n; done += chunk) {
    size_t count = std::min(chunk, n - done);
    size_t offset = done * typeBytes;
    char* result = cached != nullptr ? cached + offset : staging;
    fn(result, x + offset, y + offset, count);
    copyStreaming(out + offset, result, count * typeBytes);
  }
}

}  // namespace weft
