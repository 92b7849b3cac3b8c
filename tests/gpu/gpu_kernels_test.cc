// The CUDA element-wise kernels give the host kernels' bits for every type
// and op, aligned or not, at sizes around the 16-byte packs. Skips, saying
// why, where CUDA finds no GPU.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/types.h"
#include "cuda/reduce_kernels.h"
#include "exec/float_convert.h"
#include "exec/reduce.h"

namespace weft {
namespace {

std::string noGpuReason() {
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) return std::string("no usable GPU: ") + cudaGetErrorString(rc);
  if (count == 0) return "no GPU";
  return "";
}

// Bit patterns of small integers in type t: sums, products and quotients of
// them stay exact or round the same way everywhere. No NaNs.
void fill(std::vector<uint8_t>& bytes, weftDataType_t type, size_t n, std::mt19937& rng) {
  size_t size = typeSize(type);
  bytes.resize(n * size);
  for (size_t i = 0; i < n; ++i) {
    int v = static_cast<int>(rng() % 17) - 8;
    uint8_t* p = bytes.data() + i * size;
    switch (type) {
      case weftFloat16: {
        uint16_t h = floatToHalf(static_cast<float>(v));
        memcpy(p, &h, 2);
        break;
      }
      case weftBfloat16: {
        uint16_t h = floatToBf16(static_cast<float>(v));
        memcpy(p, &h, 2);
        break;
      }
      case weftFloat8e4m3: *p = floatToE4m3(static_cast<float>(v)); break;
      case weftFloat8e5m2: *p = floatToE5m2(static_cast<float>(v)); break;
      case weftFloat32: {
        float f = static_cast<float>(v);
        memcpy(p, &f, 4);
        break;
      }
      case weftFloat64: {
        double d = v;
        memcpy(p, &d, 8);
        break;
      }
      default: {
        uint64_t x = rng();
        x = (x << 32) | rng();
        memcpy(p, &x, size);  // integers: any bits (wrapping arithmetic)
      }
    }
  }
}

class GpuKernels : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = noGpuReason();
    if (!why.empty()) GTEST_SKIP() << why;
  }
};

TEST_F(GpuKernels, ReduceMatchesTheHostBitForBit) {
  std::mt19937 rng(7);
  const size_t kSizes[] = {1, 15, 16, 17, 1000, 65536 + 3};
  for (int t = 0; t < weftNumTypes; ++t) {
    auto type = static_cast<weftDataType_t>(t);
    size_t size = typeSize(type);
    for (int o = 0; o < weftNumOps; ++o) {
      auto op = static_cast<weftRedOp_t>(o);
      for (size_t n : kSizes)
        for (size_t offset : {size_t{0}, size_t{1}}) {  // 1 element off: the unaligned path
          std::vector<uint8_t> a, b, want(n * size), got(n * size);
          fill(a, type, n, rng);
          fill(b, type, n, rng);
          reduceFunction(type, op)(want.data(), a.data(), b.data(), n);
          uint8_t *da, *db, *dd;
          size_t bytes = (n + offset) * size;
          ASSERT_EQ(cudaMalloc(&da, bytes), cudaSuccess);
          ASSERT_EQ(cudaMalloc(&db, bytes), cudaSuccess);
          ASSERT_EQ(cudaMalloc(&dd, bytes), cudaSuccess);
          ASSERT_EQ(cudaMemcpy(da + offset * size, a.data(), n * size, cudaMemcpyHostToDevice), cudaSuccess);
          ASSERT_EQ(cudaMemcpy(db + offset * size, b.data(), n * size, cudaMemcpyHostToDevice), cudaSuccess);
          ASSERT_EQ(
              cuda::launchReduce(dd + offset * size, da + offset * size, db + offset * size, n, type, op, nullptr),
              cudaSuccess);
          ASSERT_EQ(cudaMemcpy(got.data(), dd + offset * size, n * size, cudaMemcpyDeviceToHost), cudaSuccess);
          EXPECT_EQ(memcmp(got.data(), want.data(), n * size), 0)
              << typeName(type) << " " << redOpName(op) << " n=" << n << " offset=" << offset;
          if (op == weftAvg) {  // the final division, by 3 ranks
            divideFunction(type)(want.data(), n, 3);
            ASSERT_EQ(cuda::launchDivide(dd + offset * size, n, type, 3, nullptr), cudaSuccess);
            ASSERT_EQ(cudaMemcpy(got.data(), dd + offset * size, n * size, cudaMemcpyDeviceToHost), cudaSuccess);
            EXPECT_EQ(memcmp(got.data(), want.data(), n * size), 0) << typeName(type) << " divide n=" << n;
          }
          cudaFree(da);
          cudaFree(db);
          cudaFree(dd);
        }
    }
  }
}

TEST_F(GpuKernels, CopyMovesEveryByteAlignedOrNot) {
  for (size_t bytes : {size_t{1}, size_t{15}, size_t{16}, size_t{4097}, size_t{1} << 22})
    for (size_t offset : {size_t{0}, size_t{3}}) {
      std::vector<uint8_t> src(bytes), got(bytes);
      for (size_t i = 0; i < bytes; ++i) src[i] = static_cast<uint8_t>(i * 131 + 7);
      uint8_t *ds, *dd;
      ASSERT_EQ(cudaMalloc(&ds, bytes + offset), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&dd, bytes + offset), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(ds + offset, src.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
      ASSERT_EQ(cuda::launchCopy(dd + offset, ds + offset, bytes, nullptr), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(got.data(), dd + offset, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
      EXPECT_EQ(got, src) << bytes << " bytes at offset " << offset;
      cudaFree(ds);
      cudaFree(dd);
    }
}

}  // namespace
}  // namespace weft
