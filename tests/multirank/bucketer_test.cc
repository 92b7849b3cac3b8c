// weft::Bucketer on several ranks: exact sums and averages in both modes,
// readiness in any order, the rebuilt order, reduce-scatter shards, the
// figures, the error cases, and training that gives the same bits with and
// without buckets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/launcher.h"
#include "weft/bucket.hpp"

namespace weft::test {
namespace {

// Gradient element i of parameter p on rank r: small integers, so sums are
// exact; for averages rank 0 carries (n-1)k more and every other rank k
// less, so the mean is the integer base.
float baseValue(int p, size_t i) { return static_cast<float>((p * 7 + static_cast<int>(i % 13)) % 17); }
float gradValue(int p, size_t i, int rank, int nranks, weftRedOp_t op) {
  float base = baseValue(p, i);
  if (op == weftSum) return base + static_cast<float>(rank);
  float k = static_cast<float>(i % 3);
  return rank == 0 ? base + (nranks - 1) * k : base - k;
}
float expectedValue(int p, size_t i, int nranks, weftRedOp_t op) {
  return op == weftSum ? nranks * baseValue(p, i) + static_cast<float>(nranks * (nranks - 1) / 2) : baseValue(p, i);
}

// Parameter sizes that straddle the 4 KiB buckets used below.
const std::vector<size_t> kCounts = {1000, 3, 1024, 1, 2500, 0, 777, 4096, 64, 1500};

BucketerOptions smallBuckets(weftBucketMode_t mode, weftRedOp_t op) {
  return BucketerOptions{}.firstBucket(1024).cap(4096).mode(mode).op(op);
}

std::string fail(const std::string& what, weftComm_t comm) { return what + ": " + weftGetLastError(comm); }

// One iteration: every gradient written (view or program buffer) and marked
// in `order`, then finish; "" when every value is the exact reduction.
std::string runIteration(Bucketer& bucketer, std::vector<int>& index, std::vector<std::vector<float>>& own,
                         weftBucketMode_t mode, weftRedOp_t op, const std::vector<int>& order, int rank, int nranks) {
  for (int p : order) {
    float* grad = mode == weftBucketView ? static_cast<float*>(bucketer.gradient(index[p])) : own[p].data();
    for (size_t i = 0; i < kCounts[p]; ++i) grad[i] = gradValue(p, i, rank, nranks, op);
    bucketer.markReady(index[p]);
  }
  bucketer.finish();
  for (size_t p = 0; p < kCounts.size(); ++p) {
    const float* grad = mode == weftBucketView ? static_cast<const float*>(bucketer.gradient(index[p])) : own[p].data();
    for (size_t i = 0; i < kCounts[p]; ++i)
      if (grad[i] != expectedValue(static_cast<int>(p), i, nranks, op))
        return "parameter " + std::to_string(p) + " element " + std::to_string(i) + ": " + std::to_string(grad[i]) +
               ", expected " + std::to_string(expectedValue(static_cast<int>(p), i, nranks, op));
  }
  return "";
}

// Runs body on every rank; a weft::Error it throws is that rank's failure.
void expectOnRanks(int nranks, RankMode mode, const RankBody& body) {
  auto failures = runRanks(nranks, mode, [&](weftComm_t comm, int rank, int n) -> std::string {
    try {
      return body(comm, rank, n);
    } catch (const Error& e) {
      return e.what();
    }
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Registers kCounts' parameters: bucket views, or own[p] for copy-in.
std::vector<int> addParams(Bucketer& bucketer, weftBucketMode_t mode, std::vector<std::vector<float>>& own) {
  std::vector<int> index;
  own.clear();
  for (size_t p = 0; p < kCounts.size(); ++p) {
    own.emplace_back(kCounts[p]);
    std::string name = "w" + std::to_string(p);
    index.push_back(mode == weftBucketView ? bucketer.addParam<float>(name, kCounts[p])
                                           : bucketer.addParam<float>(name, std::span<float>(own.back())));
  }
  return index;
}

struct ModeCase {
  weftBucketMode_t mode;
  weftRedOp_t op;
};

class BucketerModes : public ::testing::TestWithParam<ModeCase> {};

// Each rank marks its gradients in an order of its own (a different shuffle
// every iteration): buckets still go in bucket order, results stay exact.
TEST_P(BucketerModes, ReducesExactlyWhateverOrderGradientsBecomeReady) {
  ModeCase c = GetParam();
  expectOnRanks(3, RankMode::Threads, [c](weftComm_t comm, int rank, int nranks) -> std::string {
    Bucketer bucketer(comm, smallBuckets(c.mode, c.op));
    std::vector<std::vector<float>> own;
    std::vector<int> index = addParams(bucketer, c.mode, own);
    bucketer.finalize();
    if (bucketer.bucketCount() < 4) return "expected several buckets, got " + std::to_string(bucketer.bucketCount());
    std::mt19937 rng(static_cast<unsigned>(rank * 97 + 5));
    std::vector<int> order(kCounts.size());
    std::iota(order.begin(), order.end(), 0);
    for (int iteration = 0; iteration < 4; ++iteration) {
      std::shuffle(order.begin(), order.end(), rng);
      std::string wrong = runIteration(bucketer, index, own, c.mode, c.op, order, rank, nranks);
      if (!wrong.empty()) return "iteration " + std::to_string(iteration) + ": " + wrong;
    }
    return "";
  });
}

INSTANTIATE_TEST_SUITE_P(All, BucketerModes,
                         ::testing::Values(ModeCase{weftBucketView, weftSum}, ModeCase{weftBucketView, weftAvg},
                                           ModeCase{weftBucketCopyIn, weftSum}, ModeCase{weftBucketCopyIn, weftAvg}),
                         [](const auto& info) {
                           return std::string(info.param.mode == weftBucketView ? "view" : "copyin") +
                                  (info.param.op == weftSum ? "_sum" : "_avg");
                         });

// After the first iteration every rank adopts the order rank 0 saw (here
// registration order, not the reverse the bucketer assumed): the buckets are
// laid out again, identically on every rank, and the views move with their
// reduced contents.
TEST(Bucketer, AdoptsTheOrderRankZeroObservedAfterTheFirstIteration) {
  expectOnRanks(3, RankMode::Processes, [](weftComm_t comm, int rank, int nranks) -> std::string {
    Bucketer bucketer(comm, smallBuckets(weftBucketView, weftSum));
    std::vector<std::vector<float>> unused;
    std::vector<int> index = addParams(bucketer, weftBucketView, unused);
    bucketer.finalize();
    if (bucketer.bucket(0).firstParam != static_cast<int>(kCounts.size()) - 1)
      return "the first bucket should start with the last registered parameter";
    std::vector<int> forward(kCounts.size());
    std::iota(forward.begin(), forward.end(), 0);
    // Rank 0 marks in registration order; the others in yet another order.
    std::vector<int> order = forward;
    if (rank != 0) std::rotate(order.begin(), order.begin() + 3, order.end());
    std::string wrong = runIteration(bucketer, index, unused, weftBucketView, weftSum, order, rank, nranks);
    if (!wrong.empty()) return "first iteration: " + wrong;
    if (bucketer.layoutVersion() != 1) return "the layout was not rebuilt";
    if (bucketer.bucket(0).firstParam != 0) return "the first bucket should now start with parameter 0";
    // Every rank has rank 0's layout: compare each parameter's place.
    std::vector<int64_t> place(kCounts.size()), all(kCounts.size() * static_cast<size_t>(nranks));
    for (size_t p = 0; p < kCounts.size(); ++p) {
      int b = -1;
      size_t offset = 0;
      if (weftBucketerParamLocation(bucketer.handle(), index[p], &b, &offset) != weftSuccess) return "location";
      place[p] = b * 1000000 + static_cast<int64_t>(offset);
    }
    if (weftAllGather(place.data(), all.data(), place.size(), weftInt64, comm, nullptr) != weftSuccess ||
        weftCommSynchronize(comm) != weftSuccess)
      return fail("all-gather", comm);
    for (int r = 1; r < nranks; ++r)
      if (!std::equal(place.begin(), place.end(), all.begin() + r * static_cast<long>(place.size())))
        return "rank " + std::to_string(r) + " has another layout";
    for (int iteration = 0; iteration < 2; ++iteration) {
      wrong = runIteration(bucketer, index, unused, weftBucketView, weftSum, order, rank, nranks);
      if (!wrong.empty()) return "after the rebuild: " + wrong;
    }
    if (bucketer.layoutVersion() != 1) return "the layout was rebuilt more than once";
    return "";
  });
}

// Sharded (ZeRO-style): each rank's shard of each bucket holds the sum; in
// copy-in mode only the parts of gradients inside the shard come back.
TEST(Bucketer, ReduceScatterLeavesEachRankItsShardReduced) {
  expectOnRanks(4, RankMode::Threads, [](weftComm_t comm, int rank, int nranks) -> std::string {
    Bucketer bucketer(comm, smallBuckets(weftBucketCopyIn, weftSum).reduction(weftBucketReduceScatter));
    std::vector<std::vector<float>> own;
    std::vector<int> index = addParams(bucketer, weftBucketCopyIn, own);
    std::vector<int> order(kCounts.size());
    std::iota(order.rbegin(), order.rend(), 0);
    for (int p : order) {
      for (size_t i = 0; i < kCounts[p]; ++i) own[p][i] = gradValue(p, i, rank, nranks, weftSum);
      bucketer.markReady(index[p]);
    }
    bucketer.finish();
    size_t inShard = 0;
    for (size_t p = 0; p < kCounts.size(); ++p) {
      int b = -1;
      size_t offset = 0;
      weftBucketerParamLocation(bucketer.handle(), index[p], &b, &offset);
      weftBucketInfo_t info = bucketer.bucket(b);
      if (info.count % static_cast<size_t>(nranks) != 0 || info.shardCount * nranks != info.count)
        return "bucket " + std::to_string(b) + " is not padded to a multiple of the ranks";
      for (size_t i = 0; i < kCounts[p]; ++i) {
        size_t at = offset + i;
        bool mine = at >= info.shardOffset && at < info.shardOffset + info.shardCount;
        float want = mine ? expectedValue(static_cast<int>(p), i, nranks, weftSum)
                          : gradValue(static_cast<int>(p), i, rank, nranks, weftSum);
        if (own[p][i] != want)
          return "parameter " + std::to_string(p) + " element " + std::to_string(i) + (mine ? " (in" : " (outside") +
                 " the shard): " + std::to_string(own[p][i]) + ", expected " + std::to_string(want);
        inShard += mine ? 1 : 0;
      }
    }
    if (inShard == 0) return "no gradient element fell in this rank's shards";
    return "";
  });
}

// The figures follow DDP's definitions and add up.
TEST(Bucketer, StatsDescribeTheIteration) {
  expectOnRanks(2, RankMode::Threads, [](weftComm_t comm, int rank, int nranks) -> std::string {
    Bucketer bucketer(comm, smallBuckets(weftBucketView, weftSum));
    std::vector<std::vector<float>> unused;
    std::vector<int> index = addParams(bucketer, weftBucketView, unused);
    std::vector<int> order(kCounts.size());
    std::iota(order.rbegin(), order.rend(), 0);
    std::string wrong = runIteration(bucketer, index, unused, weftBucketView, weftSum, order, rank, nranks);
    if (!wrong.empty()) return wrong;
    weftBucketStats_t s = bucketer.stats();
    size_t bytes = 0;
    for (int b = 0; b < bucketer.bucketCount(); ++b) {
      weftBucketInfo_t info = bucketer.bucket(b);
      bytes += info.bytes;
      if (info.launchedAt < 0 || info.completedAt < info.launchedAt)
        return "bucket " + std::to_string(b) + " has no launch and completion times";
    }
    if (s.iteration != 1 || s.buckets != bucketer.bucketCount() || s.bytes != bytes)
      return "iteration/buckets/bytes: " + std::to_string(s.iteration) + " " + std::to_string(s.buckets) + " " +
             std::to_string(s.bytes) + ", expected 1 " + std::to_string(bucketer.bucketCount()) + " " +
             std::to_string(bytes);
    if (!(s.communication > 0) || s.exposed < 0 || s.exposed > s.communication || s.backwardCompute < 0 ||
        std::fabs(s.overlap - (s.communication - s.exposed)) > 1e-9)
      return "inconsistent times: backward " + std::to_string(s.backwardCompute) + " communication " +
             std::to_string(s.communication) + " exposed " + std::to_string(s.exposed) + " overlap " +
             std::to_string(s.overlap);
    return "";
  });
}

// Registers the parameters of kCounts in view mode on the C API.
std::string registerAll(weftBucketer_t bucketer, weftComm_t comm, std::vector<int>& index) {
  for (size_t p = 0; p < kCounts.size(); ++p) {
    int i = -1;
    std::string name = "w" + std::to_string(p);
    if (weftBucketerAddParam(bucketer, name.c_str(), nullptr, kCounts[p], weftFloat32, &i) != weftSuccess)
      return fail("add", comm);
    index.push_back(i);
  }
  return "";
}

bool contains(const char* text, const std::string& part) { return std::string(text).find(part) != std::string::npos; }

// Marking a gradient twice is refused at once, naming it; the iteration
// goes on and completes.
TEST(Bucketer, MarkingAGradientTwiceIsAnErrorNamingIt) {
  auto failures = runRanks(2, RankMode::Threads, [](weftComm_t comm, int, int) -> std::string {
    weftBucketerConfig_t config = WEFT_BUCKETER_CONFIG_INITIALIZER;
    weftBucketer_t bucketer = nullptr;
    if (weftBucketerCreate(comm, &config, &bucketer) != weftSuccess) return fail("create", comm);
    std::vector<int> index;
    std::string errors = registerAll(bucketer, comm, index);
    for (int p = static_cast<int>(kCounts.size()) - 1; p >= 0; --p) {
      if (weftBucketerMarkReady(bucketer, index[p]) != weftSuccess) errors += fail("mark", comm) + "; ";
      if (p == 4) {
        if (weftBucketerMarkReady(bucketer, index[p]) != weftInvalidUsage)
          errors += "a second mark was not weftInvalidUsage; ";
        else if (!contains(weftGetLastError(comm), "'w4' (#4) was marked ready twice in iteration 1"))
          errors += std::string("message: ") + weftGetLastError(comm) + "; ";
      }
    }
    if (weftBucketerFinish(bucketer) != weftSuccess) errors += fail("finish after a double mark", comm) + "; ";
    if (weftBucketerMarkReady(bucketer, 99) != weftInvalidArgument ||
        !contains(weftGetLastError(comm), "index 99 is outside the 10 registered parameters"))
      errors += std::string("index 99: ") + weftGetLastError(comm) + "; ";
    weftBucketerDestroy(bucketer);
    return errors;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A rank that reaches finish with a gradient unmarked names it; every other
// rank's finish names that rank instead of waiting for it; the next
// iteration is whole again on every rank.
TEST(Bucketer, AGradientNeverMarkedFailsEveryRanksFinishNamingItAndTheNextIterationWorks) {
  auto failures = runRanks(3, RankMode::Threads, [](weftComm_t comm, int rank, int) -> std::string {
    weftBucketerConfig_t config = WEFT_BUCKETER_CONFIG_INITIALIZER;
    config.firstBucketBytes = 1024;
    config.bucketCapBytes = 4096;
    weftBucketer_t bucketer = nullptr;
    if (weftBucketerCreate(comm, &config, &bucketer) != weftSuccess) return fail("create", comm);
    std::vector<int> index;
    std::string errors = registerAll(bucketer, comm, index);
    for (int p = static_cast<int>(kCounts.size()) - 1; p >= 0; --p)
      if (!(rank == 1 && p == 6)) weftBucketerMarkReady(bucketer, index[p]);
    weftResult_t rc = weftBucketerFinish(bucketer);
    std::string message = weftGetLastError(comm);
    if (rc != weftInvalidUsage) errors += "finish returned " + std::to_string(rc) + "; ";
    if (rank == 1 && !contains(message.c_str(), "1 gradient(s) were never marked ready in iteration 1: 'w6' (#6)"))
      errors += "rank 1's message: " + message + "; ";
    if (rank != 1 && !contains(message.c_str(), "rank 1 finished iteration 1 without marking every gradient"))
      errors += "message: " + message + "; ";
    for (int p = static_cast<int>(kCounts.size()) - 1; p >= 0; --p)
      if (weftBucketerMarkReady(bucketer, index[p]) != weftSuccess) errors += fail("mark, second iteration", comm);
    if (weftBucketerFinish(bucketer) != weftSuccess) errors += fail("second iteration", comm) + "; ";
    weftBucketerDestroy(bucketer);
    return errors;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Layouts that differ are found once, at finalize, on every rank, naming
// the rank that differs; the communicator stays usable.
TEST(Bucketer, LayoutsThatDifferAcrossRanksAreAnErrorNamingTheRank) {
  auto failures = runRanks(3, RankMode::Threads, [](weftComm_t comm, int rank, int) -> std::string {
    weftBucketerConfig_t config = WEFT_BUCKETER_CONFIG_INITIALIZER;
    weftBucketer_t bucketer = nullptr;
    if (weftBucketerCreate(comm, &config, &bucketer) != weftSuccess) return fail("create", comm);
    std::vector<int> index;
    std::string errors = registerAll(bucketer, comm, index);
    int extra = -1;
    if (rank == 2) weftBucketerAddParam(bucketer, "extra", nullptr, 5, weftFloat32, &extra);
    if (weftBucketerFinalize(bucketer) != weftInvalidUsage) errors += "finalize did not fail; ";
    std::string message = weftGetLastError(comm);
    if (!contains(message.c_str(), "bucket layouts differ across ranks") ||
        !contains(message.c_str(), "rank 2 (11 parameters"))
      errors += "message: " + message + "; ";
    if (weftBucketerMarkReady(bucketer, 0) != weftInvalidUsage) errors += "the broken bucketer accepted a mark; ";
    weftBucketerDestroy(bucketer);
    std::vector<int32_t> one(16, 1);
    if (weftAllReduce(one.data(), one.data(), one.size(), weftInt32, weftSum, comm, nullptr) != weftSuccess ||
        weftCommSynchronize(comm) != weftSuccess || one[15] != 3)
      errors += fail("all-reduce after the mismatch", comm) + "; ";
    return errors;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(Bucketer, BadArgumentsGetSpecificErrors) {
  auto failures = runRanks(1, RankMode::Threads, [](weftComm_t comm, int, int) -> std::string {
    std::string errors;
    weftBucketer_t bucketer = nullptr;
    auto expect = [&](weftResult_t rc, weftResult_t want, const char* part) {
      if (rc != want || !contains(weftGetLastError(comm), part))
        errors += std::string(part) + ": got " + std::to_string(rc) + " " + weftGetLastError(comm) + "; ";
    };
    weftBucketerConfig_t config = WEFT_BUCKETER_CONFIG_INITIALIZER;
    config.mode = 7;
    expect(weftBucketerCreate(comm, &config, &bucketer), weftInvalidArgument, "mode=7 is not a weftBucketMode_t");
    config = WEFT_BUCKETER_CONFIG_INITIALIZER;
    config.op = weftMax;
    expect(weftBucketerCreate(comm, &config, &bucketer), weftInvalidArgument, "reduced with weftSum or weftAvg");
    config = WEFT_BUCKETER_CONFIG_INITIALIZER;
    config.stream = &config;
    expect(weftBucketerCreate(comm, &config, &bucketer), weftInvalidArgument, "must be NULL for a host communicator");
    weftBucketerConfig_t unset{};
    expect(weftBucketerCreate(comm, &unset, &bucketer), weftInvalidArgument, "WEFT_BUCKETER_CONFIG_INITIALIZER");
    if (weftBucketerMarkReady(nullptr, 0) != weftInvalidArgument ||
        !contains(weftGetLastError(nullptr), "weftBucketerMarkReady: bucketer is NULL"))
      errors += std::string("NULL bucketer: ") + weftGetLastError(nullptr) + "; ";
    config = WEFT_BUCKETER_CONFIG_INITIALIZER;
    if (weftBucketerCreate(comm, &config, &bucketer) != weftSuccess) return fail("create", comm);
    float buffer[4];
    expect(weftBucketerAddParam(bucketer, "b", buffer, 4, weftFloat32, nullptr), weftInvalidArgument,
           "in view mode the bucketer's storage is the gradient");
    expect(weftBucketerAddParam(bucketer, "t", nullptr, 4, static_cast<weftDataType_t>(42), nullptr),
           weftInvalidArgument, "datatype 42");
    int index = -1;
    if (weftBucketerAddParam(bucketer, nullptr, nullptr, 4, weftFloat32, &index) != weftSuccess || index != 0)
      errors += "a valid parameter was refused; ";
    if (weftBucketerMarkReady(bucketer, 0) != weftSuccess) errors += fail("mark", comm);
    expect(weftBucketerAddParam(bucketer, "late", nullptr, 4, weftFloat32, nullptr), weftInvalidUsage,
           "the buckets were laid out already");
    expect(weftBucketerMarkReady(bucketer, 0), weftInvalidUsage, "'param0' (#0) was marked ready twice");
    if (weftBucketerFinish(bucketer) != weftSuccess) errors += fail("finish", comm);
    weftBucketerDestroy(bucketer);
    config = WEFT_BUCKETER_CONFIG_INITIALIZER;
    config.mode = weftBucketCopyIn;
    if (weftBucketerCreate(comm, &config, &bucketer) != weftSuccess) return fail("create copy-in", comm);
    expect(weftBucketerAddParam(bucketer, "n", nullptr, 4, weftFloat32, nullptr), weftInvalidArgument,
           "copy-in mode needs the gradient buffer");
    weftBucketerDestroy(bucketer);
    return errors;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A small model trained with SGD: N steps with the bucketer (in both modes)
// and N steps with one all-reduce of every gradient after backward give
// the same weights bit for bit, on every rank. (weft's all-reduce adds the
// ranks' values in one order whatever the message size, so how gradients
// are grouped into buckets cannot change a single bit.)
TEST(Bucketer, TrainingGivesTheSameBitsWithAndWithoutBuckets) {
  expectOnRanks(3, RankMode::Threads, [](weftComm_t comm, int rank, int nranks) -> std::string {
    const std::vector<size_t> sizes = {4096, 64, 8192, 64, 2048, 1};
    auto train = [&](int how) {  // 0: one all-reduce; 1: view; 2: copy-in
      std::vector<std::vector<float>> weights;
      for (size_t p = 0; p < sizes.size(); ++p) {
        weights.emplace_back(sizes[p]);
        for (size_t i = 0; i < sizes[p]; ++i) weights[p][i] = std::sin(static_cast<float>(i + 31 * p)) * 0.1f;
      }
      std::vector<std::vector<float>> grads(sizes.size());
      for (size_t p = 0; p < sizes.size(); ++p) grads[p].resize(sizes[p]);
      size_t total = std::accumulate(sizes.begin(), sizes.end(), size_t{0});
      std::vector<float> flat(total);
      std::unique_ptr<Bucketer> bucketer;
      std::vector<int> index(sizes.size());
      if (how > 0) {
        bucketer = std::make_unique<Bucketer>(
            comm, BucketerOptions{}.firstBucket(4096).cap(16384).mode(how == 1 ? weftBucketView : weftBucketCopyIn));
        for (size_t p = 0; p < sizes.size(); ++p)
          index[p] = how == 1 ? bucketer->addParam<float>("p", sizes[p])
                              : bucketer->addParam<float>("p", std::span<float>(grads[p]));
        bucketer->finalize();
      }
      for (int step = 0; step < 5; ++step) {
        // "Backward": a non-linear function of the weights, the rank and the step.
        for (int p = static_cast<int>(sizes.size()) - 1; p >= 0; --p) {
          float* g = how == 1 ? static_cast<float*>(bucketer->gradient(index[p])) : grads[p].data();
          for (size_t i = 0; i < sizes[p]; ++i)
            g[i] = std::tanh(weights[p][i] * (1.3f + 0.1f * rank) + 0.01f * static_cast<float>(step)) /
                   (1.0f + static_cast<float>(i % 7));
          if (how > 0) bucketer->markReady(index[p]);
        }
        if (how > 0) {
          bucketer->finish();
        } else {
          size_t at = 0;
          for (size_t p = 0; p < sizes.size(); at += sizes[p], ++p)
            std::memcpy(&flat[at], grads[p].data(), sizes[p] * sizeof(float));
          check(weftAllReduce(flat.data(), flat.data(), total, weftFloat32, weftAvg, comm, nullptr), comm);
          check(weftCommSynchronize(comm), comm);
          at = 0;
          for (size_t p = 0; p < sizes.size(); at += sizes[p], ++p)
            std::memcpy(grads[p].data(), &flat[at], sizes[p] * sizeof(float));
        }
        for (size_t p = 0; p < sizes.size(); ++p) {
          const float* g = how == 1 ? static_cast<const float*>(bucketer->gradient(index[p])) : grads[p].data();
          for (size_t i = 0; i < sizes[p]; ++i) weights[p][i] -= 0.5f * g[i];
        }
      }
      return weights;
    };
    auto plain = train(0);
    for (int how : {1, 2}) {
      auto bucketed = train(how);
      for (size_t p = 0; p < sizes.size(); ++p)
        if (std::memcmp(plain[p].data(), bucketed[p].data(), sizes[p] * sizeof(float)) != 0)
          return std::string(how == 1 ? "view" : "copy-in") + " mode: parameter " + std::to_string(p) +
                 " differs from training without buckets";
    }
    // ... and the ranks agree.
    std::vector<float> first(plain[0]), gathered(first.size() * static_cast<size_t>(nranks));
    check(weftAllGather(first.data(), gathered.data(), first.size(), weftFloat32, comm, nullptr), comm);
    check(weftCommSynchronize(comm), comm);
    for (int r = 1; r < nranks; ++r)
      if (std::memcmp(gathered.data(), gathered.data() + r * first.size(), first.size() * sizeof(float)) != 0)
        return "rank " + std::to_string(r) + "'s weights differ from rank 0's";
    return "";
  });
}

}  // namespace
}  // namespace weft::test
