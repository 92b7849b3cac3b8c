#include "exact_data.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "exec/float_convert.h"

namespace weft::test {
namespace {

bool isFp8(weftDataType_t type) { return type == weftFloat8e4m3 || type == weftFloat8e5m2; }
bool isUnsigned(weftDataType_t type) { return type == weftUint8 || type == weftUint32 || type == weftUint64; }

// A well-mixed 64-bit value of a table entry, the rank and a salt (splitmix64):
// neighbouring entries and ranks are unrelated, so no short shift matches.
uint64_t mix(size_t t, int rank, uint64_t salt) {
  uint64_t z = static_cast<uint64_t>(t) * 0x9e3779b97f4a7c15ull +
               static_cast<uint64_t>(rank + 1) * 0xbf58476d1ce4e5b9ull + salt * 0x94d049bb133111ebull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int64_t sumBase(weftDataType_t type, int rank, size_t t) {
  uint64_t h = mix(t, rank, 1);
  if (isFp8(type)) return static_cast<int64_t>(h % 2);
  int64_t v = static_cast<int64_t>(h % 21);
  return isUnsigned(type) ? v : v - 10;
}

int64_t avgBase(weftDataType_t type, size_t t) {
  uint64_t h = mix(t, -1, 2);
  if (isFp8(type)) return static_cast<int64_t>(h % 2);
  int64_t v = static_cast<int64_t>(h % 21);
  return isUnsigned(type) ? v : v - 10;
}

}  // namespace

void forEachRun(size_t first, size_t count, const std::function<void(size_t done, size_t t, size_t run)>& visit) {
  size_t done = 0;
  while (done < count) {
    size_t i = first + done;
    size_t offset = i % kPeriod;
    size_t t = (offset + (i / kPeriod) * kRotation) % kPeriod;
    size_t run = std::min({count - done, kPeriod - offset, kPeriod - t});
    visit(done, t, run);
    done += run;
  }
}

int64_t inputValue(weftDataType_t type, weftRedOp_t op, int nranks, int rank, size_t t) {
  switch (op) {
    case weftSum: return sumBase(type, rank, t);
    case weftProd: {
      uint64_t h = mix(t, rank, 3);
      int64_t v = h % 3 == 0 ? 2 : 1;
      if (!isUnsigned(type) && (h >> 8) % 7 == 0) v = -v;
      return v;
    }
    case weftMax:
    case weftMin: {
      uint64_t h = mix(t, rank, 4);
      if (isFp8(type)) return static_cast<int64_t>(h % 8);
      int64_t v = static_cast<int64_t>(h % 17);
      return isUnsigned(type) ? v : v - 8;
    }
    case weftAvg: {
      int64_t k = static_cast<int64_t>(mix(t, -1, 5) % 2);
      int64_t base = avgBase(type, t);
      return rank == 0 ? base + (nranks - 1) * k : base - k;
    }
    default: return 0;
  }
}

int64_t expectedValue(weftDataType_t type, weftRedOp_t op, int nranks, size_t t) {
  if (op == weftAvg) return avgBase(type, t);
  int64_t acc = inputValue(type, op, nranks, 0, t);
  for (int r = 1; r < nranks; ++r) {
    int64_t v = inputValue(type, op, nranks, r, t);
    if (op == weftSum)
      acc += v;
    else if (op == weftProd)
      acc *= v;
    else if (op == weftMax)
      acc = std::max(acc, v);
    else
      acc = std::min(acc, v);
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
  forEachRun(first, count, [&](size_t done, size_t t, size_t run) {
    memcpy(out + done * typeBytes, period.data() + t * typeBytes, run * typeBytes);
  });
}

size_t countMismatches(const void* data, size_t count, size_t first, const std::vector<char>& period,
                       size_t typeBytes) {
  const char* in = static_cast<const char*>(data);
  size_t wrong = 0;
  forEachRun(first, count, [&](size_t done, size_t t, size_t run) {
    if (memcmp(in + done * typeBytes, period.data() + t * typeBytes, run * typeBytes) == 0) return;
    for (size_t k = 0; k < run; ++k)
      wrong += memcmp(in + (done + k) * typeBytes, period.data() + (t + k) * typeBytes, typeBytes) != 0;
  });
  return wrong;
}

long long firstMismatch(const void* data, size_t count, size_t first, const std::vector<char>& period,
                        size_t typeBytes) {
  const char* in = static_cast<const char*>(data);
  long long found = -1;
  forEachRun(first, count, [&](size_t done, size_t t, size_t run) {
    if (found >= 0 || memcmp(in + done * typeBytes, period.data() + t * typeBytes, run * typeBytes) == 0) return;
    for (size_t k = 0; k < run && found < 0; ++k)
      if (memcmp(in + (done + k) * typeBytes, period.data() + (t + k) * typeBytes, typeBytes) != 0)
        found = static_cast<long long>(done + k);
  });
  return found;
}

}  // namespace weft::test
