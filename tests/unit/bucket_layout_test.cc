// Bucket assignment: every boundary of the size rule, one type per bucket,
// launch order by readiness, aligned views, padding for reduce-scatter.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "bucket/bucket_layout.h"

namespace weft {
namespace {

std::vector<BucketParam> floats(const std::vector<size_t>& counts) {
  std::vector<BucketParam> params;
  for (size_t i = 0; i < counts.size(); ++i) params.push_back({"p" + std::to_string(i), counts[i], weftFloat32});
  return params;
}

std::vector<int> inOrder(size_t n) {
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  return order;
}

std::vector<std::vector<int>> members(const BucketLayout& layout) {
  std::vector<std::vector<int>> out;
  for (const auto& bucket : layout.buckets) out.push_back(bucket.params);
  return out;
}

// 64-byte limits and 16-float (64-byte) parameters: each exactly fills one.
TEST(BucketLayout, AParameterThatFillsTheLimitExactlyClosesItsBucket) {
  BucketLayout layout = layoutBuckets(floats({16, 16, 16}), inOrder(3), 64, 64, 1);
  EXPECT_EQ(members(layout), (std::vector<std::vector<int>>{{0}, {1}, {2}}));
  EXPECT_EQ(layout.buckets[0].bytes, 64u);
}

TEST(BucketLayout, OneElementOverTheLimitStartsANewBucket) {
  // 8 + 9 floats: the second starts at byte 64 (aligned), 64 + 36 > 96.
  BucketLayout layout = layoutBuckets(floats({8, 9, 8}), inOrder(3), 96, 96, 1);
  EXPECT_EQ(members(layout), (std::vector<std::vector<int>>{{0}, {1, 2}}));
  // ... while 8 + 8 fits: 64 + 32 == 96 fills it exactly.
  layout = layoutBuckets(floats({8, 8, 8}), inOrder(3), 96, 96, 1);
  EXPECT_EQ(members(layout), (std::vector<std::vector<int>>{{0, 1}, {2}}));
}

TEST(BucketLayout, TheFirstBucketIsSmallAndLaterOnesUseTheCap) {
  // first 128 bytes (two 64-byte params), cap 256 (four).
  BucketLayout layout = layoutBuckets(floats(std::vector<size_t>(10, 16)), inOrder(10), 128, 256, 1);
  EXPECT_EQ(members(layout), (std::vector<std::vector<int>>{{0, 1}, {2, 3, 4, 5}, {6, 7, 8, 9}}));
}

TEST(BucketLayout, AParameterLargerThanTheCapGetsABucketOfItsOwn) {
  BucketLayout layout = layoutBuckets(floats({4, 1000, 4}), inOrder(3), 64, 64, 1);
  EXPECT_EQ(members(layout), (std::vector<std::vector<int>>{{0}, {1}, {2}}));
  EXPECT_EQ(layout.buckets[1].count, 1000u);
}

TEST(BucketLayout, EachTypeHasItsOwnBucketsAndLaunchOrderFollowsReadiness) {
  std::vector<BucketParam> params = {{"a", 4, weftFloat32},
                                     {"b", 4, weftFloat64},
                                     {"c", 4, weftFloat32},
                                     {"d", 4, weftBfloat16},
                                     {"e", 4, weftFloat64}};
  // Backward produces them last to first.
  BucketLayout layout = layoutBuckets(params, {4, 3, 2, 1, 0}, 1 << 20, 1 << 20, 1);
  EXPECT_EQ(members(layout), (std::vector<std::vector<int>>{{4, 1}, {3}, {2, 0}}));
  EXPECT_EQ(layout.buckets[0].type, weftFloat64);
  EXPECT_EQ(layout.buckets[1].type, weftBfloat16);
  EXPECT_EQ(layout.buckets[2].type, weftFloat32);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_EQ(layout.buckets[layout.bucketOf[i]].type, params[i].type);
}

TEST(BucketLayout, ViewsStartOn64ByteBoundariesAndDoNotOverlap) {
  std::vector<BucketParam> params = {{"a", 3, weftFloat16}, {"b", 5, weftFloat16}, {"c", 33, weftFloat16}};
  BucketLayout layout = layoutBuckets(params, inOrder(3), 1 << 20, 1 << 20, 1);
  ASSERT_EQ(layout.buckets.size(), 1u);
  EXPECT_EQ(layout.offsetOf, (std::vector<size_t>{0, 32, 64}));  // 64 bytes = 32 halves
  EXPECT_EQ(layout.buckets[0].count, 64u + 33u);
}

TEST(BucketLayout, ReduceScatterPadsEveryBucketToAMultipleOfTheRankCount) {
  BucketLayout layout = layoutBuckets(floats({7, 100}), inOrder(2), 64, 1 << 20, 3);
  ASSERT_EQ(layout.buckets.size(), 1u + 1u);
  EXPECT_EQ(layout.buckets[0].count, 9u);
  EXPECT_EQ(layout.buckets[1].count, 102u);
  EXPECT_EQ(layout.buckets[1].bytes, 408u);
}

TEST(BucketLayout, ZeroElementParametersStillBelongToABucket) {
  BucketLayout layout = layoutBuckets(floats({0, 0, 4}), inOrder(3), 64, 64, 1);
  for (int b : layout.bucketOf) EXPECT_GE(b, 0);
  EXPECT_EQ(layout.buckets.size(), 1u);
}

TEST(BucketLayout, TheDigestChangesWithAnyCountTypeOrOrder) {
  auto params = floats({16, 16, 16});
  uint64_t base = layoutDigest(params, layoutBuckets(params, inOrder(3), 64, 64, 1), 1);
  EXPECT_EQ(base, layoutDigest(params, layoutBuckets(params, inOrder(3), 64, 64, 1), 1));
  EXPECT_NE(base, layoutDigest(params, layoutBuckets(params, {2, 1, 0}, 64, 64, 1), 1));
  EXPECT_NE(base, layoutDigest(params, layoutBuckets(params, inOrder(3), 64, 64, 1), 2));
  auto other = params;
  other[1].count = 17;
  EXPECT_NE(base, layoutDigest(other, layoutBuckets(other, inOrder(3), 64, 64, 1), 1));
  other = params;
  other[2].type = weftInt32;
  EXPECT_NE(base, layoutDigest(other, layoutBuckets(other, inOrder(3), 64, 64, 1), 1));
}

}  // namespace
}  // namespace weft
