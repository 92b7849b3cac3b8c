// Element kernels of the device code: dst = a ⊕ b, the final division of an
// average, and copies, over a slice, its elements spread across the block's
// lanes, 16 bytes per lane per load where the pointers allow. One source for
// both compilers: on the GPU fp16 and bf16 use the native instructions and
// fp8 CUDA's saturating conversions; on the emulated device the same
// arithmetic goes through exec/float_convert.h. Both round a sum or product
// of two narrow values once from its exact float value, so the results are
// the host executor's bit for bit (device_test holds them equal).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "device/port.h"
#include "weft/weft.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#endif
#include <cstring>
#if !defined(__CUDA_ARCH__)
#include "exec/float_convert.h"
#endif

namespace weft::device {

// Storage types of the narrow floats: the bits, with the format as a tag.
struct Half {
  uint16_t bits;
};
struct Bf16 {
  uint16_t bits;
};
struct E4m3 {
  uint8_t bits;
};
struct E5m2 {
  uint8_t bits;
};

#if defined(__CUDA_ARCH__)
WEFT_DEVICE_CODE inline float toFloat(Half v) { return __half2float(__ushort_as_half(v.bits)); }
WEFT_DEVICE_CODE inline float toFloat(Bf16 v) { return __bfloat162float(__ushort_as_bfloat16(v.bits)); }
WEFT_DEVICE_CODE inline float toFloat(E4m3 v) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(v.bits, __NV_E4M3)));
}
WEFT_DEVICE_CODE inline float toFloat(E5m2 v) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(v.bits, __NV_E5M2)));
}
template <typename N>
WEFT_DEVICE_CODE inline N fromFloat(float v) {
  if constexpr (std::is_same_v<N, Half>)
    return {__half_as_ushort(__float2half_rn(v))};
  else if constexpr (std::is_same_v<N, Bf16>)
    return {__bfloat16_as_ushort(__float2bfloat16_rn(v))};
  else if constexpr (std::is_same_v<N, E4m3>)
    return {__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3)};
  else
    return {__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E5M2)};
}
#else
inline float toFloat(Half v) { return halfToFloat(v.bits); }
inline float toFloat(Bf16 v) { return bf16ToFloat(v.bits); }
inline float toFloat(E4m3 v) { return e4m3ToFloat(v.bits); }
inline float toFloat(E5m2 v) { return e5m2ToFloat(v.bits); }
template <typename N>
inline N fromFloat(float v) {
  if constexpr (std::is_same_v<N, Half>)
    return {floatToHalf(v)};
  else if constexpr (std::is_same_v<N, Bf16>)
    return {floatToBf16(v)};
  else if constexpr (std::is_same_v<N, E4m3>)
    return {floatToE4m3(v)};
  else
    return {floatToE5m2(v)};
}
#endif

template <typename S>
constexpr bool kNarrow =
    std::is_same_v<S, Half> || std::is_same_v<S, Bf16> || std::is_same_v<S, E4m3> || std::is_same_v<S, E5m2>;

template <typename C>
WEFT_HD bool isNan(C v) {
#if defined(__CUDA_ARCH__)
  return isnan(v);
#else
  return std::isnan(v);
#endif
}

// A NaN operand wins, the first one if both are.
template <typename C>
WEFT_HD C floatMax(C a, C b) {
  if (isNan(a)) return a;
  if (isNan(b)) return b;
  return a > b ? a : b;
}
template <typename C>
WEFT_HD C floatMin(C a, C b) {
  if (isNan(a)) return a;
  if (isNan(b)) return b;
  return a < b ? a : b;
}

// One element: integers wrap (computed unsigned), floats let a NaN win,
// narrow floats go through float and are rounded once.
template <typename S, int kOp>
WEFT_HD S apply(S a, S b) {
  if constexpr (kNarrow<S>) {
    float x = toFloat(a), y = toFloat(b);
    constexpr bool kFp8 = std::is_same_v<S, E4m3> || std::is_same_v<S, E5m2>;
    // fp8: every result goes back through the saturating conversion (an
    // infinite e5m2 operand comes out as the largest finite value), as the
    // CUDA kernels do.
    if constexpr (kFp8 && kOp == weftMax) return fromFloat<S>(floatMax(x, y));
    if constexpr (kFp8 && kOp == weftMin) return fromFloat<S>(floatMin(x, y));
    // fp16 and bf16: a max or min is one of the operands, bits and all.
    if constexpr (kOp == weftMax || kOp == weftMin) {
      if (isNan(x)) return a;
      if (isNan(y)) return b;
      return (kOp == weftMax ? x > y : x < y) ? a : b;
    }
    return fromFloat<S>(kOp == weftProd ? x * y : x + y);
  } else if constexpr (std::is_integral_v<S>) {
    using U = std::make_unsigned_t<S>;
    using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;
    if constexpr (kOp == weftSum || kOp == weftAvg)
      return static_cast<S>(static_cast<U>(static_cast<W>(static_cast<U>(a)) + static_cast<W>(static_cast<U>(b))));
    else if constexpr (kOp == weftProd)
      return static_cast<S>(static_cast<U>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b))));
    else if constexpr (kOp == weftMax)
      return a > b ? a : b;
    else
      return a < b ? a : b;
  } else {
    if constexpr (kOp == weftSum || kOp == weftAvg)
      return a + b;
    else if constexpr (kOp == weftProd)
      return a * b;
    else if constexpr (kOp == weftMax)
      return floatMax(a, b);
    else
      return floatMin(a, b);
  }
}

template <typename S>
WEFT_HD S divide(S a, int d) {
  if constexpr (kNarrow<S>)
    return fromFloat<S>(toFloat(a) / static_cast<float>(d));
  else
    return static_cast<S>(a / static_cast<S>(d));
}
template <typename S>
WEFT_HD S multiply(S a, S scalar) {
  if constexpr (kNarrow<S>)
    return fromFloat<S>(toFloat(a) * toFloat(scalar));
  else if constexpr (std::is_integral_v<S>)
    return apply<S, weftProd>(a, scalar);
  else
    return a * scalar;
}

// Lane-strided loops over n elements; 16-byte packs where all pointers are
// aligned, the tail element by element.
template <typename S>
union alignas(16) Pack {
  uint64_t words[2];
  S elements[16 / sizeof(S)];
};

WEFT_HD bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <typename S, int kOp>
WEFT_DEVICE_CODE inline void reduceAs(void* dstv, const void* av, const void* bv, size_t n) {
  S* dst = static_cast<S*>(dstv);
  const S* a = static_cast<const S*>(av);
  const S* b = static_cast<const S*>(bv);
  size_t lane = static_cast<size_t>(laneIndex()), lanes = static_cast<size_t>(laneCount());
  size_t done = 0;
  if (aligned16(dst) && aligned16(a) && aligned16(b)) {
    constexpr size_t kPer = 16 / sizeof(S);
    size_t packs = n / kPer;
    for (size_t p = lane; p < packs; p += lanes) {
      Pack<S> x, y, r;
      copy16(&x, a + p * kPer);
      copy16(&y, b + p * kPer);
      for (size_t e = 0; e < kPer; ++e) r.elements[e] = apply<S, kOp>(x.elements[e], y.elements[e]);
      copy16(dst + p * kPer, &r);
    }
    done = packs * kPer;
  }
  for (size_t i = done + lane; i < n; i += lanes) dst[i] = apply<S, kOp>(a[i], b[i]);
}

template <typename S>
WEFT_DEVICE_CODE inline void reduceOps(void* dst, const void* a, const void* b, size_t n, int op) {
  switch (op) {
    case weftProd: reduceAs<S, weftProd>(dst, a, b, n); break;
    case weftMax: reduceAs<S, weftMax>(dst, a, b, n); break;
    case weftMin: reduceAs<S, weftMin>(dst, a, b, n); break;
    default: reduceAs<S, weftSum>(dst, a, b, n); break;  // sum, and average (divided at the end)
  }
}

template <typename S>
WEFT_DEVICE_CODE inline void divideAs(void* dstv, const void* srcv, size_t n, int divisor) {
  S* dst = static_cast<S*>(dstv);
  const S* src = static_cast<const S*>(srcv);
  for (size_t i = static_cast<size_t>(laneIndex()); i < n; i += static_cast<size_t>(laneCount()))
    dst[i] = divide(src[i], divisor);
}

template <typename S>
WEFT_DEVICE_CODE inline void multiplyAs(void* dstv, const void* srcv, size_t n, uint64_t scalarBits) {
  S* dst = static_cast<S*>(dstv);
  const S* src = static_cast<const S*>(srcv);
  S scalar;
  memcpy(&scalar, &scalarBits, sizeof(S));
  for (size_t i = static_cast<size_t>(laneIndex()); i < n; i += static_cast<size_t>(laneCount()))
    dst[i] = multiply(src[i], scalar);
}

// Calls f.template operator()<S>() with S the storage type of `type`.
template <typename F>
WEFT_DEVICE_CODE inline void withType(int type, F&& f) {
  switch (type) {
    case weftInt8: f(int8_t{}); break;
    case weftUint8: f(uint8_t{}); break;
    case weftInt32: f(int32_t{}); break;
    case weftUint32: f(uint32_t{}); break;
    case weftInt64: f(int64_t{}); break;
    case weftUint64: f(uint64_t{}); break;
    case weftFloat16: f(Half{}); break;
    case weftFloat32: f(float{}); break;
    case weftFloat64: f(double{}); break;
    case weftBfloat16: f(Bf16{}); break;
    case weftFloat8e4m3: f(E4m3{}); break;
    default: f(E5m2{}); break;
  }
}

// dst = a ⊕ b for n elements of `type` (dst may alias a or b).
WEFT_DEVICE_CODE inline void reduceSlice(void* dst, const void* a, const void* b, size_t n, int type, int op) {
  withType(type, [&](auto tag) { reduceOps<decltype(tag)>(dst, a, b, n, op); });
}
// dst = src / divisor (weftAvg's final write; dst may be src).
WEFT_DEVICE_CODE inline void divideSlice(void* dst, const void* src, size_t n, int type, int divisor) {
  withType(type, [&](auto tag) { divideAs<decltype(tag)>(dst, src, n, divisor); });
}
// dst = src * scalar (a PreMulSum's scaling; scalarBits holds the value).
WEFT_DEVICE_CODE inline void multiplySlice(void* dst, const void* src, size_t n, int type, uint64_t scalarBits) {
  withType(type, [&](auto tag) { multiplyAs<decltype(tag)>(dst, src, n, scalarBits); });
}
// bytes from src to dst, 16 bytes per lane per load where both are aligned.
WEFT_DEVICE_CODE inline void copySlice(void* dstv, const void* srcv, size_t bytes) {
  if (dstv == srcv) return;
  char* dst = static_cast<char*>(dstv);
  const char* src = static_cast<const char*>(srcv);
  size_t lane = static_cast<size_t>(laneIndex()), lanes = static_cast<size_t>(laneCount());
  size_t done = 0;
  if (aligned16(dst) && aligned16(src)) {
    size_t packs = bytes / 16;
    for (size_t p = lane; p < packs; p += lanes) copy16(dst + p * 16, src + p * 16);
    done = packs * 16;
  }
  for (size_t i = done + lane; i < bytes; i += lanes) dst[i] = src[i];
}

}  // namespace weft::device
