// binary16 reductions in binary16 arithmetic (AVX-512 FP16: 32 lanes per
// instruction, no conversions). Built with -mavx512fp16; installed over the
// AVX-512 set's binary16 row only on CPUs that report the extension.
//
// The results equal those of computing in float and rounding once, as the
// other kernel sets do: a float holds the exact product of two binary16
// values, and for sums its 24 bits are enough (at least twice binary16's 11,
// plus 2) that rounding to float and then to binary16 is the same as
// rounding the exact sum once. The unit tests compare the two bit for bit.
#include <immintrin.h>

#include <cstdint>

#include "exec/reduce.h"

namespace weft {
namespace avx512fp16 {
namespace {

template <int kOp>
inline __m512h op(__m512h x, __m512h y) {
  if constexpr (kOp == weftSum || kOp == weftAvg) return _mm512_add_ph(x, y);
  if constexpr (kOp == weftProd) return _mm512_mul_ph(x, y);
  // A NaN operand wins, as in every other kernel set.
  __m512h pick = kOp == weftMax ? _mm512_max_ph(x, y) : _mm512_min_ph(x, y);
  pick = _mm512_mask_blend_ph(_mm512_cmp_ph_mask(y, y, _CMP_UNORD_Q), pick, y);
  return _mm512_mask_blend_ph(_mm512_cmp_ph_mask(x, x, _CMP_UNORD_Q), pick, x);
}

template <int kOp>
void reduceHalf(void* dstRaw, const void* aRaw, const void* bRaw, size_t n) {
  uint16_t* dst = static_cast<uint16_t*>(dstRaw);
  const uint16_t* a = static_cast<const uint16_t*>(aRaw);
  const uint16_t* b = static_cast<const uint16_t*>(bRaw);
  bool prefetch = n * 2 >= kPrefetchMinBytes;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    if (prefetch)
      for (int line = 0; line < 2; ++line) {
        __builtin_prefetch(reinterpret_cast<const char*>(a + i) + kPrefetchBytes + 64 * line, 0, 1);
        __builtin_prefetch(reinterpret_cast<const char*>(b + i) + kPrefetchBytes + 64 * line, 0, 1);
      }
    for (size_t k = i; k < i + 64; k += 32)
      _mm512_storeu_ph(dst + k, op<kOp>(_mm512_loadu_ph(a + k), _mm512_loadu_ph(b + k)));
  }
  // The tail, masked: lanes past n are neither read nor written.
  for (; i < n; i += 32) {
    size_t left = n - i < 32 ? n - i : 32;
    __mmask32 mask = static_cast<__mmask32>((uint64_t{1} << left) - 1);
    __m512h x = _mm512_castsi512_ph(_mm512_maskz_loadu_epi16(mask, a + i));
    __m512h y = _mm512_castsi512_ph(_mm512_maskz_loadu_epi16(mask, b + i));
    _mm512_mask_storeu_epi16(dst + i, mask, _mm512_castph_si512(op<kOp>(x, y)));
  }
}

}  // namespace

void installNativeHalf(ReduceKernels& k) {
  k.reduce[weftFloat16][weftSum] = reduceHalf<weftSum>;
  k.reduce[weftFloat16][weftProd] = reduceHalf<weftProd>;
  k.reduce[weftFloat16][weftMax] = reduceHalf<weftMax>;
  k.reduce[weftFloat16][weftMin] = reduceHalf<weftMin>;
  k.reduce[weftFloat16][weftAvg] = reduceHalf<weftAvg>;
  k.isa = "avx512+fp16";
}

}  // namespace avx512fp16
}  // namespace weft
