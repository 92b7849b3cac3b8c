// Which gradients share a bucket, and where each lies in it. A pure function
// of the parameters, the order backward produces their gradients, and the
// size limits, so every rank that agrees on those computes the same layout
// (and a digest of it says whether they do).
//
// The rule (DDP's, with a hard cap): walk the parameters in ready order;
// each data type has one open bucket. A parameter joins its type's open
// bucket unless that would take the bucket past its limit, in which case the
// bucket closes first; a bucket that reaches its limit exactly closes too. A
// type's first bucket is limited to firstBytes, later ones to capBytes; a
// parameter larger than the limit gets a bucket of its own. Buckets are then
// ordered by when their first gradient becomes ready, which is the order
// they are launched in.
//
// Each gradient starts at a 64-byte boundary of its bucket (the views are
// aligned for vector code); the gaps are zero and reduced with the rest. A
// bucket's element count is rounded up to a multiple of padMultiple (the
// rank count, for reduce-scatter).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "weft/weft.h"

namespace weft {

struct BucketParam {
  std::string name;
  size_t count = 0;
  weftDataType_t type = weftFloat32;
};

struct BucketLayout {
  struct Bucket {
    weftDataType_t type = weftFloat32;
    std::vector<int> params;  // in ready order
    size_t count = 0;         // elements, padding included
    size_t bytes = 0;
  };
  std::vector<Bucket> buckets;   // in launch order
  std::vector<int> bucketOf;     // per parameter
  std::vector<size_t> offsetOf;  // per parameter: first element in its bucket
};

constexpr size_t kBucketAlignBytes = 64;

// readyOrder: every parameter index once, in the order their gradients are
// expected to become ready.
BucketLayout layoutBuckets(const std::vector<BucketParam>& params, const std::vector<int>& readyOrder,
                           size_t firstBytes, size_t capBytes, size_t padMultiple);

// A digest of everything ranks must agree on: the parameters' sizes and
// types, the layout, and the settings that shape communication.
uint64_t layoutDigest(const std::vector<BucketParam>& params, const BucketLayout& layout, uint64_t settings);

}  // namespace weft
