#include "exact_data.h"

#include <algorithm>
#include <cstring>

#include "exec/float_convert.h"

namespace weft::test {
namespace {

bool isFp8(weftDataType_t type) { return type == weftFloat8e4m3 || type == weftFloat8e5m2; }
bool isUnsigned(weftDataType_t type) { return type == weftUint8 || type == weftUint32 || type == weftUint64; }

int64_t sumBase(weftDataType_t type, int rank, size_t t) {
  if (isFp8(type)) return static_cast<int64_t>((t + static_cast<size_t>(rank)) % 2);
  int64_t v = static_cast<int64_t>((t * 13 + static_cast<size_t>(rank) * 7) % 21);
  return isUnsigned(type) ? v : v - 10;
}

int64_t avgBase(weftDataType_t type, size_t t) {
  if (isFp8(type)) return static_cast<int64_t>(t % 2);
  int64_t v = static_cast<int64_t>((t * 11) % 21);
  return isUnsigned(type) ? v : v - 10;
}

}  // namespace

int64_t inputValue(weftDataType_t type, weftRedOp_t op, int nranks, int rank, size_t i) {
  size_t t = i % kPeriod;
  size_t r = static_cast<size_t>(rank);
  switch (op) {
    case weftSum:
      return sumBase(type, rank, t);
    case weftProd: {
      int64_t v = ((t + r) % 3 == 0) ? 2 : 1;
      if (!isUnsigned(type) && (t * 5 + r) % 7 == 0) v = -v;
      return v;
    }
    case weftMax:
    case weftMin: {
      if (isFp8(type)) return static_cast<int64_t>((t * 3 + r * 5) % 8);
      int64_t v = static_cast<int64_t>((t * 7 + r * 5) % 17);
      return isUnsigned(type) ? v : v - 8;
    }
    case weftAvg: {
      int64_t k = static_cast<int64_t>(t % 2);
      int64_t base = avgBase(type, t);
      return rank == 0 ? base + (nranks - 1) * k : base - k;
    }
    default:
      return 0;
  }
}

int64_t expectedValue(weftDataType_t type, weftRedOp_t op, int nranks, size_t i) {
  if (op == weftAvg) return avgBase(type, i % kPeriod);
  int64_t acc = inputValue(type, op, nranks, 0, i);
  for (int r = 1; r < nranks; ++r) {
    int64_t v = inputValue(type, op, nranks, r, i);
    if (op == weftSum) acc += v;
    else if (op == weftProd) acc *= v;
    else if (op == weftMax) acc = std::max(acc, v);
    else acc = std::min(acc, v);
  }
  return acc;
}

void storeValue(weftDataType_t type, int64_t value, void* dst) {
  auto put = [dst](auto v) { memcpy(dst, &v, sizeof(v)); };
  switch (type) {
    case weftInt8: put(static_cast<int8_t>(value)); break;
    case weftUint8: put(static_cast<uint8_t>(value)); break;
    case weftInt32: put(static_cast<int32_t>(value)); break;
    case weftUint32: put(static_cast<uint32_t>(value)); break;
    case weftInt64: put(static_cast<int64_t>(value)); break;
    case weftUint64: put(static_cast<uint64_t>(value)); break;
    case weftFloat16: put(floatToHalf(static_cast<float>(value))); break;
    case weftFloat32: put(static_cast<float>(value)); break;
    case weftFloat64: put(static_cast<double>(value)); break;
    case weftBfloat16: put(floatToBf16(static_cast<float>(value))); break;
    case weftFloat8e4m3: put(floatToE4m3(static_cast<float>(value))); break;
    case weftFloat8e5m2: put(floatToE5m2(static_cast<float>(value))); break;
    default: break;
  }
}

std::vector<char> inputPeriod(weftDataType_t type, weftRedOp_t op, int nranks, int rank) {
  size_t bytes = weftTypeSize(type);
  std::vector<char> out(kPeriod * bytes);
  for (size_t t = 0; t < kPeriod; ++t) storeValue(type, inputValue(type, op, nranks, rank, t), &out[t * bytes]);
  return out;
}

std::vector<char> expectedPeriod(weftDataType_t type, weftRedOp_t op, int nranks) {
  size_t bytes = weftTypeSize(type);
  std::vector<char> out(kPeriod * bytes);
  for (size_t t = 0; t < kPeriod; ++t) storeValue(type, expectedValue(type, op, nranks, t), &out[t * bytes]);
  return out;
}

std::vector<char> patternPeriod(weftDataType_t type, int rank) {
  size_t bytes = weftTypeSize(type) * kPeriod;
  std::vector<char> out(bytes);
  uint32_t state = 0x9e3779b9u * static_cast<uint32_t>(rank + 1);
  for (size_t i = 0; i < bytes; ++i) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    out[i] = static_cast<char>(state);
  }
  return out;
}

void fillFromPeriod(void* dst, size_t count, size_t first, const std::vector<char>& period, size_t typeBytes) {
  char* out = static_cast<char*>(dst);
  size_t done = 0;
  while (done < count) {
    size_t t = (first + done) % kPeriod;
    size_t run = std::min(count - done, kPeriod - t);
    memcpy(out + done * typeBytes, period.data() + t * typeBytes, run * typeBytes);
    done += run;
  }
}

size_t countMismatches(const void* data, size_t count, size_t first, const std::vector<char>& period,
                       size_t typeBytes) {
  const char* in = static_cast<const char*>(data);
  size_t done = 0, wrong = 0;
  while (done < count) {
    size_t t = (first + done) % kPeriod;
    size_t run = std::min(count - done, kPeriod - t);
    if (memcmp(in + done * typeBytes, period.data() + t * typeBytes, run * typeBytes) != 0) {
      for (size_t k = 0; k < run; ++k)
        wrong += memcmp(in + (done + k) * typeBytes, period.data() + (t + k) * typeBytes, typeBytes) != 0;
    }
    done += run;
  }
  return wrong;
}

long long firstMismatch(const void* data, size_t count, size_t first, const std::vector<char>& period,
                        size_t typeBytes) {
  const char* in = static_cast<const char*>(data);
  size_t done = 0;
  while (done < count) {
    size_t t = (first + done) % kPeriod;
    size_t run = std::min(count - done, kPeriod - t);
    if (memcmp(in + done * typeBytes, period.data() + t * typeBytes, run * typeBytes) != 0) {
      for (size_t k = 0; k < run; ++k)
        if (memcmp(in + (done + k) * typeBytes, period.data() + (t + k) * typeBytes, typeBytes) != 0)
          return static_cast<long long>(done + k);
    }
    done += run;
  }
  return -1;
}

}  // namespace weft::test
