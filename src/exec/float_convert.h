// Conversions between float and the narrow floating types weft reduces:
// IEEE binary16, bfloat16, and the OCP fp8 formats e4m3 (no infinities,
// max 448) and e5m2. Float to narrow rounds to nearest even; fp8 saturates to
// the largest finite value as CUDA's default fp8 conversions do.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace weft {

inline uint32_t floatBits(float value) {
  uint32_t bits;
  memcpy(&bits, &value, 4);
  return bits;
}
inline float bitsFloat(uint32_t bits) {
  float value;
  memcpy(&value, &bits, 4);
  return value;
}

inline float bf16ToFloat(uint16_t value) { return bitsFloat(static_cast<uint32_t>(value) << 16); }

inline uint16_t floatToBf16(float value) {
  uint32_t bits = floatBits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

inline float halfToFloat(uint16_t value) {
  uint32_t sign = static_cast<uint32_t>(value & 0x8000u) << 16;
  uint32_t exponent = (value >> 10) & 0x1fu;
  uint32_t mantissa = value & 0x3ffu;
  if (exponent == 0) {
    float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // 2^-24
    return bitsFloat(floatBits(magnitude) | sign);
  }
  if (exponent == 31) return bitsFloat(sign | 0x7f800000u | (mantissa << 13));
  return bitsFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// Narrow float with kExpBits exponent bits and kManBits mantissa bits.
// kIeeeSpecials: the top exponent holds inf/NaN (binary16, e5m2); otherwise
// only the all-ones pattern is NaN (e4m3). kSaturate: overflow gives the
// largest finite value instead of infinity.
//
// floatToNarrowReference computes it with float arithmetic (the definition:
// round the magnitude to the format's quantum at its exponent, nearest even);
// floatToNarrow does the same with integer arithmetic on the bits, about two
// orders of magnitude faster, and the unit tests hold the two equal.
// The codes of a narrow format, shared by both conversions below.
template <int kExpBits, int kManBits, bool kIeeeSpecials>
struct NarrowFormat {
  static constexpr int kBias = (1 << (kExpBits - 1)) - 1;
  static constexpr uint32_t kSignShift = kExpBits + kManBits;
  static constexpr int kMaxExp = kIeeeSpecials ? (1 << kExpBits) - 2 - kBias : (1 << kExpBits) - 1 - kBias;
  static constexpr uint32_t kMaxMantissa = kIeeeSpecials ? (1u << kManBits) - 1 : (1u << kManBits) - 2;
  static constexpr uint32_t kMaxCode = (static_cast<uint32_t>(kMaxExp + kBias) << kManBits) | kMaxMantissa;
  static constexpr uint32_t kInfCode = static_cast<uint32_t>((1 << kExpBits) - 1) << kManBits;
  static constexpr uint32_t kNanCode = kIeeeSpecials ? kInfCode | (1u << (kManBits - 1)) : (1u << kSignShift) - 1;
};

template <int kExpBits, int kManBits, bool kIeeeSpecials, bool kSaturate>
inline uint32_t floatToNarrowReference(float value) {
  using F = NarrowFormat<kExpBits, kManBits, kIeeeSpecials>;
  constexpr int kBias = F::kBias, kMaxExp = F::kMaxExp;
  constexpr uint32_t kSignShift = F::kSignShift, kMaxMantissa = F::kMaxMantissa, kMaxCode = F::kMaxCode,
                     kInfCode = F::kInfCode, kNanCode = F::kNanCode;
  uint32_t bits = floatBits(value);
  uint32_t sign = (bits >> 31) << kSignShift;
  float magnitude = std::fabs(value);
  if (std::isnan(value)) return sign | kNanCode;
  const float maxFinite = std::ldexp(1.0f + static_cast<float>(kMaxMantissa) / (1 << kManBits), kMaxExp);
  if (std::isinf(value)) return sign | ((kSaturate || !kIeeeSpecials) ? kMaxCode : kInfCode);
  int exponent = std::ilogb(magnitude);
  constexpr int kMinNormalExp = 1 - kBias;
  if (magnitude == 0.0f) return sign;
  if (exponent < kMinNormalExp) exponent = kMinNormalExp;  // subnormal range: fixed quantum
  float quantum = std::ldexp(1.0f, exponent - kManBits);
  float steps = std::nearbyint(magnitude / quantum);  // round to nearest even
  uint32_t q = static_cast<uint32_t>(steps);
  if (q >= (2u << kManBits)) {
    q >>= 1;
    ++exponent;
  }
  uint32_t code;
  if (q < (1u << kManBits)) {
    code = q;  // subnormal (exponent field 0)
  } else {
    code = (static_cast<uint32_t>(exponent + kBias) << kManBits) | (q - (1u << kManBits));
  }
  if (code > kMaxCode || magnitude > maxFinite * 2) {
    code = (kSaturate || !kIeeeSpecials) ? kMaxCode : kInfCode;
  }
  return sign | code;
}

template <int kExpBits, int kManBits, bool kIeeeSpecials, bool kSaturate>
inline uint32_t floatToNarrow(float value) {
  using F = NarrowFormat<kExpBits, kManBits, kIeeeSpecials>;
  constexpr int kBias = F::kBias;
  constexpr uint32_t kSignShift = F::kSignShift, kMaxCode = F::kMaxCode, kNanCode = F::kNanCode;
  constexpr uint32_t kOverflowCode = (kSaturate || !kIeeeSpecials) ? kMaxCode : F::kInfCode;
  constexpr int kMinNormalExp = 1 - kBias;
  constexpr int kShift = 23 - kManBits;
  uint32_t bits = floatBits(value);
  uint32_t sign = (bits >> 31) << kSignShift;
  uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return sign | kNanCode;
  if (magnitude == 0x7f800000u) return sign | kOverflowCode;
  int exponent = static_cast<int>(magnitude >> 23) - 127;
  if (exponent >= kMinNormalExp) {
    // Round the mantissa to kManBits, nearest even; a carry moves into the
    // exponent, as it should. Then rebias the exponent.
    uint32_t rounded = (magnitude + ((1u << (kShift - 1)) - 1) + ((magnitude >> kShift) & 1u)) >> kShift;
    uint32_t code = rounded - (static_cast<uint32_t>(127 - kBias) << kManBits);
    return sign | (code > kMaxCode ? kOverflowCode : code);
  }
  // Below the smallest normal: a multiple of the fixed quantum
  // 2^(kMinNormalExp - kManBits). Scaling by a power of two is exact, and
  // adding 2^23 rounds to an integer, nearest even (the default mode).
  // (Float subnormals, far below every quantum here, round to zero alike.)
  float scaled = bitsFloat(magnitude) * bitsFloat(static_cast<uint32_t>(127 + kManBits - kMinNormalExp) << 23);
  float integral = (scaled + 8388608.0f) - 8388608.0f;
  return sign | static_cast<uint32_t>(integral);
}

inline uint16_t floatToHalf(float value) { return static_cast<uint16_t>(floatToNarrow<5, 10, true, false>(value)); }
inline uint8_t floatToE4m3(float value) { return static_cast<uint8_t>(floatToNarrow<4, 3, false, true>(value)); }
inline uint8_t floatToE5m2(float value) { return static_cast<uint8_t>(floatToNarrow<5, 2, true, true>(value)); }

inline float e4m3ToFloat(uint8_t value) {
  uint32_t sign = static_cast<uint32_t>(value & 0x80u) << 24;
  uint32_t exponent = (value >> 3) & 0xfu;
  uint32_t mantissa = value & 0x7u;
  if (exponent == 0xf && mantissa == 0x7) return bitsFloat(0x7fc00000u);                               // a quiet NaN
  if (exponent == 0) return bitsFloat(floatBits(static_cast<float>(mantissa) * 0.001953125f) | sign);  // 2^-9
  return bitsFloat(sign | ((exponent + 120u) << 23) | (mantissa << 20));
}

inline float e5m2ToFloat(uint8_t value) { return halfToFloat(static_cast<uint16_t>(value) << 8); }

}  // namespace weft
