// Reductions for every type and op, the narrow-float conversions' rounding,
// and agreement between the generic kernels and every vector set (AVX2,
// AVX-512, AVX-512 FP16) this CPU runs.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <cstring>
#include <string>
#include <random>
#include <vector>

#include "exec/float_convert.h"
#include "core/types.h"
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

// The bit-twiddling conversions against the float-arithmetic definition, on
// every float whose low 12 bits take values that decide rounding (zero, one,
// just under and over a half, all ones) with every upper 20 bits: every
// exponent, every rounding position of every format, ties, sticky bits,
// overflow and both subnormal ranges; then random floats.
template <int kE, int kM, bool kIeee, bool kSat>
void expectSameAsReference(const char* name) {
  auto check = [&](uint32_t bits) {
    float value = bitsFloat(bits);
    uint32_t fast = floatToNarrow<kE, kM, kIeee, kSat>(value);
    uint32_t slow = floatToNarrowReference<kE, kM, kIeee, kSat>(value);
    if (fast != slow) {
      ADD_FAILURE() << name << ": float 0x" << std::hex << bits << " gives 0x" << fast << ", the definition 0x" << slow;
      return false;
    }
    return true;
  };
  for (uint32_t high = 0; high < (1u << 20); ++high)
    for (uint32_t low : {0x000u, 0x001u, 0x7ffu, 0x800u, 0x801u, 0xfffu})
      if (!check((high << 12) | low)) return;
  std::mt19937 random(11);
  for (int i = 0; i < 2000000; ++i)
    if (!check(static_cast<uint32_t>(random()))) return;
}

TEST(FloatConvert, NarrowingMatchesItsDefinitionEverywhere) {
  expectSameAsReference<5, 10, true, false>("binary16");
  expectSameAsReference<4, 3, false, true>("e4m3");
  expectSameAsReference<5, 2, true, true>("e5m2");
}

TEST(FloatConvert, E4m3DecodesToItsValue) {
  for (uint32_t bits = 0; bits < 256; ++bits) {
    int exponent = (bits >> 3) & 0xf, mantissa = bits & 7;
    float sign = (bits & 0x80) ? -1.0f : 1.0f;
    float value = e4m3ToFloat(static_cast<uint8_t>(bits));
    if (exponent == 0xf && mantissa == 7) {
      EXPECT_TRUE(std::isnan(value));
      continue;
    }
    float want = exponent == 0 ? sign * std::ldexp(static_cast<float>(mantissa), -9)
                               : sign * std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
    EXPECT_EQ(floatBits(value), floatBits(want)) << "e4m3 0x" << std::hex << bits;
  }
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

size_t widthOf(int type) { return typeSize(static_cast<weftDataType_t>(type)); }

// Element i of x and y agree bit for bit, or are both NaN (payloads may
// legitimately differ between instruction sets).
bool sameElement(int type, const char* x, const char* y) {
  size_t width = widthOf(type);
  if (memcmp(x, y, width) == 0) return true;
  uint16_t hx = 0, hy = 0;
  memcpy(&hx, x, std::min<size_t>(width, 2));
  memcpy(&hy, y, std::min<size_t>(width, 2));
  switch (type) {
    case weftFloat16: return std::isnan(halfToFloat(hx)) && std::isnan(halfToFloat(hy));
    case weftBfloat16: return std::isnan(bf16ToFloat(hx)) && std::isnan(bf16ToFloat(hy));
    case weftFloat32: {
      float fx, fy;
      memcpy(&fx, x, 4);
      memcpy(&fy, y, 4);
      return std::isnan(fx) && std::isnan(fy);
    }
    case weftFloat64: {
      double dx, dy;
      memcpy(&dx, x, 8);
      memcpy(&dy, y, 8);
      return std::isnan(dx) && std::isnan(dy);
    }
    default: return false;
  }
}

// Every kernel set this CPU runs against the generic one, on n elements at
// byte offset `skew` from a 64-byte boundary.
void compareSets(int type, const std::vector<char>& a, const std::vector<char>& b, size_t n, size_t skew) {
  const ReduceKernels& generic = genericReduceKernels();
  size_t width = widthOf(type);
  std::vector<char> x(n * width + 64), y(n * width + 64);
  for (const ReduceKernels* set : availableReduceKernels()) {
    if (set == &generic) continue;
    for (int op = 0; op < weftNumOps; ++op) {
      generic.reduce[type][op](x.data(), a.data(), b.data(), n);
      set->reduce[type][op](y.data() + skew, a.data(), b.data(), n);
      for (size_t i = 0; i < n; ++i)
        if (!sameElement(type, &x[i * width], &y[skew + i * width])) {
          ADD_FAILURE() << set->isa << ": type " << typeName(static_cast<weftDataType_t>(type)) << " op "
                        << redOpName(static_cast<weftRedOp_t>(op)) << " element " << i << " of " << n << " differs";
          break;
        }
    }
  }
}

TEST(Reduce, EveryKernelSetMatchesTheGenericOneBitForBit) {
  std::vector<const ReduceKernels*> sets = availableReduceKernels();
  std::string names;
  for (const ReduceKernels* set : sets) names += std::string(" ") + set->isa;
  if (sets.size() < 2) GTEST_SKIP() << "this CPU or build runs only the generic kernels";
  EXPECT_EQ(sets.back(), &reduceKernels()) << "the set in use is the last available one:" << names;
  std::mt19937_64 random(42);
  // Lengths that are no multiple of any vector width or prefetch block, and
  // long enough to take the prefetching paths.
  for (size_t n : {size_t{1}, size_t{31}, size_t{1031}, size_t{5003}}) {
    for (int type = 0; type < weftNumTypes; ++type) {
      size_t bytes = n * 8;
      std::vector<char> a(bytes), b(bytes);
      for (auto& c : a) c = static_cast<char>(random());
      for (auto& c : b) c = static_cast<char>(random());
      compareSets(type, a, b, n, n % 3 == 0 ? 0 : widthOf(type));  // off a 64-byte boundary, element-aligned
    }
  }
}

// The 16-bit floats exhaustively on one side: every binary16 and bfloat16
// value (subnormals, infinities, NaNs, both zeros) against values that make
// ties, overflow, underflow and cancellation.
TEST(Reduce, EveryKernelSetMatchesTheGenericOneOnEverySixteenBitFloat) {
  if (availableReduceKernels().size() < 2) GTEST_SKIP() << "this CPU or build runs only the generic kernels";
  std::mt19937_64 random(7);
  for (int type : {static_cast<int>(weftFloat16), static_cast<int>(weftBfloat16)}) {
    std::vector<uint16_t> partners{0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x3c00, 0xbc00, 0x3c01,
                                   0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x0080, 0x8080, 0x7f7f, 0x3f80,
                                   0x3f81, 0xbf80, 0x7f80, 0xff80, 0x7fc0, 0x0040, 0x807f};
    for (int k = 0; k < 16; ++k) partners.push_back(static_cast<uint16_t>(random()));
    size_t n = 65536 * partners.size();
    std::vector<char> a(n * 2), b(n * 2);
    for (size_t p = 0; p < partners.size(); ++p)
      for (uint32_t v = 0; v < 65536; ++v) {
        uint16_t x = static_cast<uint16_t>(v), y = partners[p];
        memcpy(&a[(p * 65536 + v) * 2], &x, 2);
        memcpy(&b[(p * 65536 + v) * 2], &y, 2);
      }
    compareSets(type, a, b, n, 0);
    compareSets(type, b, a, n, 0);  // and with the operands the other way round
  }
}

TEST(Reduce, StreamingReductionWritesBothDestinations) {
  std::mt19937 random(3);
  for (size_t n : {size_t{0}, size_t{3}, size_t{700}, size_t{100003}}) {
    std::vector<float> a(n), b(n), want(n), streamed(n + 16, -1.0f), copy(n, -1.0f), alone(n + 16, -1.0f);
    for (size_t i = 0; i < n; ++i) {
      a[i] = static_cast<float>(random() % 1000);
      b[i] = static_cast<float>(random() % 1000);
      want[i] = a[i] + b[i];
    }
    ReduceFn sum = reduceFunction(weftFloat32, weftSum);
    // An output that is not 64-byte aligned, with and without the copy.
    reduceStreaming(sum, 4, streamed.data() + 1, copy.data(), a.data(), b.data(), n);
    reduceStreaming(sum, 4, alone.data() + 3, nullptr, a.data(), b.data(), n);
    EXPECT_EQ(std::vector<float>(streamed.begin() + 1, streamed.begin() + 1 + static_cast<long>(n)), want);
    EXPECT_EQ(copy, want);
    EXPECT_EQ(std::vector<float>(alone.begin() + 3, alone.begin() + 3 + static_cast<long>(n)), want);
    EXPECT_EQ(streamed[0], -1.0f) << "nothing written before the output";
    EXPECT_EQ(streamed[n + 1], -1.0f) << "nothing written past the output";
  }
}

}  // namespace
}  // namespace weft
