#include "cuda/reduce_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

namespace weft::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kMaxBlocks = 1024;

// Integer sums and products wrap, computed unsigned as on the host.
template <typename T>
__device__ __forceinline__ T wrapSum(T a, T b) {
  using U = std::make_unsigned_t<T>;
  return static_cast<T>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
}
template <typename T>
__device__ __forceinline__ T wrapProd(T a, T b) {
  using U = std::make_unsigned_t<T>;
  using W = std::conditional_t<(sizeof(U) < sizeof(unsigned)), unsigned, U>;
  return static_cast<T>(static_cast<U>(static_cast<W>(static_cast<U>(a)) * static_cast<W>(static_cast<U>(b))));
}
// A NaN operand wins, as on the host.
template <typename C>
__device__ __forceinline__ C floatMax(C a, C b) {
  if (a != a) return a;
  if (b != b) return b;
  return a > b ? a : b;
}
template <typename C>
__device__ __forceinline__ C floatMin(C a, C b) {
  if (a != a) return a;
  if (b != b) return b;
  return a < b ? a : b;
}

// One element of storage type S: integers wrap, floats let a NaN win.
template <typename S, int kOp>
struct Op {
  static __device__ __forceinline__ S apply(S a, S b) {
    if constexpr (std::is_integral_v<S>) {
      if constexpr (kOp == weftSum || kOp == weftAvg)
        return wrapSum(a, b);
      else if constexpr (kOp == weftProd)
        return wrapProd(a, b);
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
  static __device__ __forceinline__ S divide(S a, int d) { return static_cast<S>(a / static_cast<S>(d)); }
};

// fp16 and bf16: native arithmetic. A sum or product of two such values is
// exact in float, so rounding it once to the narrow type (what these
// instructions do) gives the host's bits.
__device__ __forceinline__ float toFloat(__half v) { return __half2float(v); }
__device__ __forceinline__ float toFloat(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename H>
__device__ __forceinline__ H fromFloat(float v) {
  if constexpr (std::is_same_v<H, __half>)
    return __float2half_rn(v);
  else
    return __float2bfloat16_rn(v);
}
template <typename H, int kOp>
struct NativeOp {
  static __device__ __forceinline__ H apply(H a, H b) {
    if constexpr (kOp == weftSum || kOp == weftAvg)
      return __hadd(a, b);
    else if constexpr (kOp == weftProd)
      return __hmul(a, b);
    else if constexpr (kOp == weftMax)
      return __hisnan(a) ? a : __hisnan(b) ? b : __hgt(a, b) ? a : b;
    else
      return __hisnan(a) ? a : __hisnan(b) ? b : __hlt(a, b) ? a : b;
  }
  static __device__ __forceinline__ H divide(H a, int d) { return fromFloat<H>(toFloat(a) / static_cast<float>(d)); }
};
template <int kOp>
struct Op<__half, kOp> : NativeOp<__half, kOp> {};
template <int kOp>
struct Op<__nv_bfloat16, kOp> : NativeOp<__nv_bfloat16, kOp> {};

// fp8: through float, saturating to the largest finite value.
template <__nv_fp8_interpretation_t kFormat>
struct Fp8 {
  __nv_fp8_storage_t bits;
};
template <__nv_fp8_interpretation_t kFormat>
__device__ __forceinline__ float fp8ToFloat(Fp8<kFormat> v) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(v.bits, kFormat)));
}
template <__nv_fp8_interpretation_t kFormat>
__device__ __forceinline__ Fp8<kFormat> floatToFp8(float v) {
  return {__nv_cvt_float_to_fp8(v, __NV_SATFINITE, kFormat)};
}
template <__nv_fp8_interpretation_t kFormat, int kOp>
struct Op<Fp8<kFormat>, kOp> {
  static __device__ __forceinline__ Fp8<kFormat> apply(Fp8<kFormat> a, Fp8<kFormat> b) {
    return floatToFp8<kFormat>(Op<float, kOp>::apply(fp8ToFloat(a), fp8ToFloat(b)));
  }
  static __device__ __forceinline__ Fp8<kFormat> divide(Fp8<kFormat> a, int d) {
    return floatToFp8<kFormat>(fp8ToFloat(a) / static_cast<float>(d));
  }
};

// 16 bytes of S.
template <typename S>
union Pack {
  uint4 raw;
  S elements[16 / sizeof(S)];
};

template <typename S, int kOp>
__global__ void __launch_bounds__(kThreads) reduceKernel(S* dst, const S* a, const S* b, size_t n, bool vector) {
  size_t thread = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t done = 0;
  if (vector) {
    constexpr size_t kPer = 16 / sizeof(S);
    size_t packs = n / kPer;
    const uint4* va = reinterpret_cast<const uint4*>(a);
    const uint4* vb = reinterpret_cast<const uint4*>(b);
    uint4* vd = reinterpret_cast<uint4*>(dst);
    for (size_t p = thread; p < packs; p += stride) {
      Pack<S> x, y, r;
      x.raw = va[p];
      y.raw = vb[p];
#pragma unroll
      for (size_t e = 0; e < kPer; ++e) r.elements[e] = Op<S, kOp>::apply(x.elements[e], y.elements[e]);
      vd[p] = r.raw;
    }
    done = packs * kPer;
  }
  for (size_t i = done + thread; i < n; i += stride) dst[i] = Op<S, kOp>::apply(a[i], b[i]);
}

template <typename S>
__global__ void __launch_bounds__(kThreads) divideKernel(S* dst, size_t n, int divisor) {
  size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += stride)
    dst[i] = Op<S, weftSum>::divide(dst[i], divisor);
}

__global__ void __launch_bounds__(kThreads) copyKernel(uint8_t* dst, const uint8_t* src, size_t bytes, bool vector) {
  size_t thread = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  size_t stride = static_cast<size_t>(gridDim.x) * blockDim.x;
  size_t done = 0;
  if (vector) {
    size_t packs = bytes / 16;
    for (size_t p = thread; p < packs; p += stride)
      reinterpret_cast<uint4*>(dst)[p] = reinterpret_cast<const uint4*>(src)[p];
    done = packs * 16;
  }
  for (size_t i = done + thread; i < bytes; i += stride) dst[i] = src[i];
}

int blocksFor(size_t units) {
  size_t blocks = (units + kThreads - 1) / kThreads;
  return static_cast<int>(blocks < 1 ? 1 : blocks > kMaxBlocks ? kMaxBlocks : blocks);
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <typename S, int kOp>
cudaError_t reduceAs(void* dst, const void* a, const void* b, size_t n, cudaStream_t stream) {
  bool vector = aligned16(dst) && aligned16(a) && aligned16(b);
  size_t units = vector ? n / (16 / sizeof(S)) + 1 : n;
  reduceKernel<S, kOp><<<blocksFor(units), kThreads, 0, stream>>>(static_cast<S*>(dst), static_cast<const S*>(a),
                                                                  static_cast<const S*>(b), n, vector);
  return cudaGetLastError();
}

template <typename S>
cudaError_t reduceType(void* dst, const void* a, const void* b, size_t n, weftRedOp_t op, cudaStream_t stream) {
  switch (op) {
    case weftSum: return reduceAs<S, weftSum>(dst, a, b, n, stream);
    case weftProd: return reduceAs<S, weftProd>(dst, a, b, n, stream);
    case weftMax: return reduceAs<S, weftMax>(dst, a, b, n, stream);
    case weftMin: return reduceAs<S, weftMin>(dst, a, b, n, stream);
    case weftAvg: return reduceAs<S, weftAvg>(dst, a, b, n, stream);
    default: return cudaErrorInvalidValue;
  }
}

template <typename S>
cudaError_t divideAs(void* dst, size_t n, int divisor, cudaStream_t stream) {
  divideKernel<S><<<blocksFor(n), kThreads, 0, stream>>>(static_cast<S*>(dst), n, divisor);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launchReduce(void* dst, const void* a, const void* b, size_t n, weftDataType_t type, weftRedOp_t op,
                         cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (type) {
    case weftInt8: return reduceType<int8_t>(dst, a, b, n, op, stream);
    case weftUint8: return reduceType<uint8_t>(dst, a, b, n, op, stream);
    case weftInt32: return reduceType<int32_t>(dst, a, b, n, op, stream);
    case weftUint32: return reduceType<uint32_t>(dst, a, b, n, op, stream);
    case weftInt64: return reduceType<int64_t>(dst, a, b, n, op, stream);
    case weftUint64: return reduceType<uint64_t>(dst, a, b, n, op, stream);
    case weftFloat16: return reduceType<__half>(dst, a, b, n, op, stream);
    case weftFloat32: return reduceType<float>(dst, a, b, n, op, stream);
    case weftFloat64: return reduceType<double>(dst, a, b, n, op, stream);
    case weftBfloat16: return reduceType<__nv_bfloat16>(dst, a, b, n, op, stream);
    case weftFloat8e4m3: return reduceType<Fp8<__NV_E4M3>>(dst, a, b, n, op, stream);
    case weftFloat8e5m2: return reduceType<Fp8<__NV_E5M2>>(dst, a, b, n, op, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t launchDivide(void* dst, size_t n, weftDataType_t type, int divisor, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (type) {
    case weftInt8: return divideAs<int8_t>(dst, n, divisor, stream);
    case weftUint8: return divideAs<uint8_t>(dst, n, divisor, stream);
    case weftInt32: return divideAs<int32_t>(dst, n, divisor, stream);
    case weftUint32: return divideAs<uint32_t>(dst, n, divisor, stream);
    case weftInt64: return divideAs<int64_t>(dst, n, divisor, stream);
    case weftUint64: return divideAs<uint64_t>(dst, n, divisor, stream);
    case weftFloat16: return divideAs<__half>(dst, n, divisor, stream);
    case weftFloat32: return divideAs<float>(dst, n, divisor, stream);
    case weftFloat64: return divideAs<double>(dst, n, divisor, stream);
    case weftBfloat16: return divideAs<__nv_bfloat16>(dst, n, divisor, stream);
    case weftFloat8e4m3: return divideAs<Fp8<__NV_E4M3>>(dst, n, divisor, stream);
    case weftFloat8e5m2: return divideAs<Fp8<__NV_E5M2>>(dst, n, divisor, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t launchCopy(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return cudaSuccess;
  bool vector = aligned16(dst) && aligned16(src);
  copyKernel<<<blocksFor(vector ? bytes / 16 + 1 : bytes), kThreads, 0, stream>>>(
      static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), bytes, vector);
  return cudaGetLastError();
}

}  // namespace weft::cuda
