// Reductions for every type and op, the narrow-float conversions' rounding,
// and agreement between the generic and the AVX2 kernels.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "exec/float_convert.h"
#include "exec/reduce.h"

namespace weft {
namespace {

TEST(FloatConvert, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties go to even (1.0).
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // Just above halfway rounds up.
  EXPECT_EQ(floatToBf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);
  // 1.0078125 + half an ulp ties to the even neighbour above (1.015625).
  EXPECT_EQ(floatToBf16(1.0078125f + std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(floatToBf16(-2.0f), 0xc000);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::nanf("")))));
  EXPECT_EQ(bf16ToFloat(floatToBf16(INFINITY)), INFINITY);
}

TEST(FloatConvert, HalfRoundsToNearestEvenAndHandlesRanges) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  // 1 + 2^-11 is a tie between 1.0 and 1 + 2^-10: to even (1.0).
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3*2^-11 ties between 1+2^-10 (odd) and 1+2^-9 (even): up.
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);               // rounds past the largest finite: infinity
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -26)), 0x0000);  // below half of it: zero
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(halfToFloat(0xfbff), -65504.0f);
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    float value = halfToFloat(static_cast<uint16_t>(bits));
    if (std::isnan(value)) continue;
    ASSERT_EQ(floatToHalf(value), bits) << "half 0x" << std::hex << bits << " does not round-trip";
  }
}

TEST(FloatConvert, Fp8RoundTripsAndSaturates) {
  for (uint32_t bits = 0; bits < 256; ++bits) {
    float e4 = e4m3ToFloat(static_cast<uint8_t>(bits));
    if (!std::isnan(e4)) EXPECT_EQ(floatToE4m3(e4), bits) << "e4m3 " << bits;
    float e5 = e5m2ToFloat(static_cast<uint8_t>(bits));
    if (!std::isnan(e5) && !std::isinf(e5)) EXPECT_EQ(floatToE5m2(e5), bits) << "e5m2 " << bits;
  }
  EXPECT_EQ(e4m3ToFloat(floatToE4m3(1000.0f)), 448.0f);  // saturates to the largest finite
  EXPECT_EQ(e4m3ToFloat(floatToE4m3(-1000.0f)), -448.0f);
  EXPECT_EQ(e5m2ToFloat(floatToE5m2(1e6f)), 57344.0f);
  EXPECT_EQ(e4m3ToFloat(floatToE4m3(17.0f)), 16.0f);  // tie between 16 and 18: to even
  EXPECT_EQ(e4m3ToFloat(floatToE4m3(19.0f)), 20.0f);  // tie between 18 and 20: to even
  EXPECT_TRUE(std::isnan(e4m3ToFloat(floatToE4m3(std::nanf("")))));
}

template <typename T>
std::vector<T> reduce(weftDataType_t type, weftRedOp_t op, const std::vector<T>& a, const std::vector<T>& b,
                      const ReduceKernels& kernels = reduceKernels()) {
  std::vector<T> out(a.size());
  kernels.reduce[type][op](out.data(), a.data(), b.data(), a.size());
  return out;
}

TEST(Reduce, IntegersForEveryOp) {
  std::vector<int32_t> a{1, -5, 7, 2147483647}, b{3, 4, -9, 1};
  EXPECT_EQ(reduce(weftInt32, weftSum, a, b), (std::vector<int32_t>{4, -1, -2, INT32_MIN}));  // wraps
  EXPECT_EQ(reduce(weftInt32, weftProd, a, b), (std::vector<int32_t>{3, -20, -63, 2147483647}));
  EXPECT_EQ(reduce(weftInt32, weftMax, a, b), (std::vector<int32_t>{3, 4, 7, 2147483647}));
  EXPECT_EQ(reduce(weftInt32, weftMin, a, b), (std::vector<int32_t>{1, -5, -9, 1}));
  std::vector<uint8_t> ua{250, 3, 16}, ub{10, 200, 16};
  EXPECT_EQ(reduce(weftUint8, weftSum, ua, ub), (std::vector<uint8_t>{4, 203, 32}));
  EXPECT_EQ(reduce(weftUint8, weftProd, ua, ub), (std::vector<uint8_t>{196, 88, 0}));
  std::vector<int8_t> sa{-128, 100}, sb{-1, 100};
  EXPECT_EQ(reduce(weftInt8, weftSum, sa, sb), (std::vector<int8_t>{127, -56}));
  std::vector<uint64_t> la{~0ull, 5}, lb{2, 7};
  EXPECT_EQ(reduce(weftUint64, weftSum, la, lb), (std::vector<uint64_t>{1, 12}));
  EXPECT_EQ(reduce(weftUint64, weftMax, la, lb), (std::vector<uint64_t>{~0ull, 7}));
  std::vector<int64_t> avg{20, -7};
  divideFunction(weftInt64)(avg.data(), avg.size(), 3);
  EXPECT_EQ(avg, (std::vector<int64_t>{6, -2}));  // integer division truncates toward zero
}

TEST(Reduce, FloatsForEveryOpAndNanWinsMaxMin) {
  std::vector<float> a{1.5f, -2.0f, NAN, 3.0f}, b{2.25f, 8.0f, 1.0f, NAN};
  auto sum = reduce(weftFloat32, weftSum, a, b);
  EXPECT_EQ(sum[0], 3.75f);
  EXPECT_EQ(sum[1], 6.0f);
  auto max = reduce(weftFloat32, weftMax, a, b);
  EXPECT_EQ(max[0], 2.25f);
  EXPECT_TRUE(std::isnan(max[2]));
  EXPECT_TRUE(std::isnan(max[3]));
  auto min = reduce(weftFloat32, weftMin, a, b);
  EXPECT_EQ(min[1], -2.0f);
  EXPECT_TRUE(std::isnan(min[2]));
  std::vector<double> da{0.1, 3.0}, db{0.2, -0.5};
  EXPECT_EQ(reduce(weftFloat64, weftProd, da, db)[1], -1.5);
  EXPECT_EQ(reduce(weftFloat64, weftSum, da, db)[0], 0.1 + 0.2);
  std::vector<float> avg{9.0f, 1.0f};
  divideFunction(weftFloat32)(avg.data(), avg.size(), 3);
  EXPECT_EQ(avg[0], 3.0f);
  EXPECT_EQ(avg[1], 1.0f / 3.0f);
}

TEST(Reduce, NarrowFloatsRoundOnceAfterComputingInFloat) {
  // bf16: 256 + 1 is not representable (8 bits of mantissa): ties to even, 256.
  std::vector<uint16_t> a{floatToBf16(256.0f), floatToBf16(1.5f)}, b{floatToBf16(1.0f), floatToBf16(2.5f)};
  auto sum = reduce(weftBfloat16, weftSum, a, b);
  EXPECT_EQ(bf16ToFloat(sum[0]), 256.0f);
  EXPECT_EQ(bf16ToFloat(sum[1]), 4.0f);
  auto prod = reduce(weftBfloat16, weftProd, a, b);
  EXPECT_EQ(bf16ToFloat(prod[1]), 3.75f);
  // binary16: 2048 + 1 ties to even (2048); 2048 + 3 rounds to 2052.
  std::vector<uint16_t> h1(16, floatToHalf(2048.0f)), h2(16, floatToHalf(1.0f));
  h2[9] = floatToHalf(3.0f);  // beyond the first 8 lanes, so the vector path is covered
  auto hs = reduce(weftFloat16, weftSum, h1, h2);
  EXPECT_EQ(halfToFloat(hs[0]), 2048.0f);
  EXPECT_EQ(halfToFloat(hs[9]), 2052.0f);
  std::vector<uint16_t> hmax = reduce(weftFloat16, weftMax, std::vector<uint16_t>(9, floatToHalf(-1.0f)),
                                      std::vector<uint16_t>(9, floatToHalf(0.5f)));
  EXPECT_EQ(halfToFloat(hmax[8]), 0.5f);
  // fp8 e4m3 sums saturate instead of overflowing to NaN.
  std::vector<uint8_t> e1{floatToE4m3(448.0f), floatToE4m3(2.0f)}, e2{floatToE4m3(448.0f), floatToE4m3(3.0f)};
  auto es = reduce(weftFloat8e4m3, weftSum, e1, e2);
  EXPECT_EQ(e4m3ToFloat(es[0]), 448.0f);
  EXPECT_EQ(e4m3ToFloat(es[1]), 5.0f);
  std::vector<uint8_t> f1{floatToE5m2(6.0f)}, f2{floatToE5m2(-8.0f)};
  EXPECT_EQ(e5m2ToFloat(reduce(weftFloat8e5m2, weftMin, f1, f2)[0]), -8.0f);
}

TEST(Reduce, VectorKernelsMatchTheGenericOnesBitForBit) {
  const ReduceKernels* avx2 = avx2ReduceKernels();
  if (avx2 == nullptr || reduceKernels().isa != std::string("avx2"))
    GTEST_SKIP() << "this CPU or build has no AVX2/F16C kernels (using " << reduceKernels().isa << ")";
  const ReduceKernels& generic = genericReduceKernels();
  std::mt19937_64 random(42);
  size_t n = 1031;  // not a multiple of any vector width
  for (int type = 0; type < weftNumTypes; ++type) {
    size_t bytes = n * 8;
    std::vector<char> a(bytes), b(bytes), x(bytes), y(bytes);
    for (auto& c : a) c = static_cast<char>(random());
    for (auto& c : b) c = static_cast<char>(random());
    for (int op = 0; op < weftNumOps; ++op) {
      generic.reduce[type][op](x.data(), a.data(), b.data(), n);
      avx2->reduce[type][op](y.data(), a.data(), b.data(), n);
      // NaN payloads may legitimately differ; compare values that are not NaN.
      for (size_t i = 0; i < n; ++i) {
        size_t width = type == weftFloat16 || type == weftBfloat16                        ? 2
                       : (type == weftFloat32 || type == weftInt32 || type == weftUint32) ? 4
                       : (type == weftFloat64 || type == weftInt64 || type == weftUint64) ? 8
                                                                                          : 1;
        if (memcmp(&x[i * width], &y[i * width], width) == 0) continue;
        if (type == weftFloat16) {
          uint16_t hx, hy;
          memcpy(&hx, &x[i * 2], 2);
          memcpy(&hy, &y[i * 2], 2);
          if (std::isnan(halfToFloat(hx)) && std::isnan(halfToFloat(hy))) continue;
        }
        ADD_FAILURE() << "type " << type << " op " << op << " element " << i << " differs";
        break;
      }
    }
  }
}

}  // namespace
}  // namespace weft
