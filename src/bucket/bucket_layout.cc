#include "bucket/bucket_layout.h"

#include <algorithm>
#include <map>

#include "core/types.h"

namespace weft {

BucketLayout layoutBuckets(const std::vector<BucketParam>& params, const std::vector<int>& readyOrder,
                           size_t firstBytes, size_t capBytes, size_t padMultiple) {
  struct Open {
    BucketLayout::Bucket bucket;
    size_t limit = 0;
  };
  std::vector<BucketLayout::Bucket> closed;
  std::map<int, Open> open;  // by data type
  std::vector<int> position(params.size());
  for (size_t i = 0; i < readyOrder.size(); ++i) position[static_cast<size_t>(readyOrder[i])] = static_cast<int>(i);

  auto close = [&](Open& slot) {
    if (!slot.bucket.params.empty()) closed.push_back(std::move(slot.bucket));
    slot.bucket = BucketLayout::Bucket{};
    slot.limit = capBytes;
  };
  for (int index : readyOrder) {
    const BucketParam& param = params[static_cast<size_t>(index)];
    size_t typeBytes = typeSize(param.type);
    auto [it, inserted] = open.try_emplace(static_cast<int>(param.type));
    Open& slot = it->second;
    if (inserted) slot.limit = firstBytes;
    slot.bucket.type = param.type;
    size_t start = (slot.bucket.bytes + kBucketAlignBytes - 1) / kBucketAlignBytes * kBucketAlignBytes;
    size_t paramBytes = param.count * typeBytes;
    if (!slot.bucket.params.empty() && start + paramBytes > slot.limit) {
      close(slot);
      slot.bucket.type = param.type;
      start = 0;
    }
    slot.bucket.params.push_back(index);
    slot.bucket.bytes = start + paramBytes;
    if (slot.bucket.bytes >= slot.limit) close(slot);
  }
  for (auto& [type, slot] : open) close(slot);

  // Launch order: by the readiness of each bucket's first gradient.
  std::sort(closed.begin(), closed.end(), [&](const BucketLayout::Bucket& a, const BucketLayout::Bucket& b) {
    return position[static_cast<size_t>(a.params.front())] < position[static_cast<size_t>(b.params.front())];
  });

  BucketLayout layout;
  layout.bucketOf.assign(params.size(), -1);
  layout.offsetOf.assign(params.size(), 0);
  for (size_t b = 0; b < closed.size(); ++b) {
    BucketLayout::Bucket& bucket = closed[b];
    size_t typeBytes = typeSize(bucket.type);
    size_t bytes = 0;
    for (int index : bucket.params) {
      bytes = (bytes + kBucketAlignBytes - 1) / kBucketAlignBytes * kBucketAlignBytes;
      layout.bucketOf[static_cast<size_t>(index)] = static_cast<int>(b);
      layout.offsetOf[static_cast<size_t>(index)] = bytes / typeBytes;
      bytes += params[static_cast<size_t>(index)].count * typeBytes;
    }
    size_t count = bytes / typeBytes;
    if (padMultiple > 1) count = (count + padMultiple - 1) / padMultiple * padMultiple;
    bucket.count = count;
    bucket.bytes = count * typeBytes;
  }
  layout.buckets = std::move(closed);
  return layout;
}

namespace {
// FNV-1a, 64 bits: a digest for comparing layouts across ranks, not a MAC.
struct Fnv {
  uint64_t value = 1469598103934665603ull;
  void add(uint64_t word) {
    for (int i = 0; i < 8; ++i) {
      value ^= (word >> (8 * i)) & 0xff;
      value *= 1099511628211ull;
    }
  }
};
}  // namespace

uint64_t layoutDigest(const std::vector<BucketParam>& params, const BucketLayout& layout, uint64_t settings) {
  Fnv fnv;
  fnv.add(settings);
  fnv.add(params.size());
  for (const BucketParam& param : params) {
    fnv.add(param.count);
    fnv.add(static_cast<uint64_t>(param.type));
  }
  fnv.add(layout.buckets.size());
  for (const BucketLayout::Bucket& bucket : layout.buckets) {
    fnv.add(bucket.count);
    fnv.add(static_cast<uint64_t>(bucket.type));
    for (int index : bucket.params) fnv.add(static_cast<uint64_t>(index));
  }
  return fnv.value;
}

}  // namespace weft
