// weftRedOpCreatePreMulSum: every rank's input scaled by its own scalar, then
// summed, for all-reduce (in and out of place), reduce-scatter and reduce, in
// every algorithm the tuner picks for these sizes; a scalar read when the op
// runs; and the errors: a wrong datatype, a destroyed op, ranks that disagree.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/launcher.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

class PreMulSumTest : public ::testing::TestWithParam<RankMode> {};

// Rank r's input element i, and its scalar: small integers and powers of two,
// so every product and sum is exact in float and double.
float input(int rank, size_t i) { return static_cast<float>(static_cast<int>(i % 97) - 40 + 3 * rank); }
float scalarOf(int rank) { return rank % 2 == 0 ? static_cast<float>(rank + 1) : 0.5f * static_cast<float>(rank); }

std::string check(weftComm_t comm, weftResult_t result, const char* what) {
  if (result == weftSuccess) result = weftCommSynchronize(comm);
  return result == weftSuccess ? "" : std::string(what) + ": " + weftGetLastError(comm);
}

TEST_P(PreMulSumTest, EveryRanksInputIsScaledByItsOwnScalarThenSummed) {
  auto failures = runRanks(4, GetParam(), [](weftComm_t comm, int rank, int n) -> std::string {
    float scalar = scalarOf(rank);
    weftRedOp_t op;
    if (weftRedOpCreatePreMulSum(&op, &scalar, weftFloat32, weftScalarHostImmediate, comm) != weftSuccess)
      return weftGetLastError(comm);
    scalar = 1000.0f;  // read at creation: later changes do not count
    auto want = [n](size_t i) {
      float sum = 0;
      for (int r = 0; r < n; ++r) sum += scalarOf(r) * input(r, i);
      return sum;
    };
    // 1 element, one slot's worth and more, and one that goes by address
    // between thread ranks.
    for (size_t count : {size_t{1}, size_t{1000}, size_t{70001}, size_t{600000}}) {
      std::vector<float> in(count), out(count, -1);
      for (size_t i = 0; i < count; ++i) in[i] = input(rank, i);
      std::string problem =
          check(comm, weftAllReduce(in.data(), out.data(), count, weftFloat32, op, comm, nullptr), "all-reduce");
      if (!problem.empty()) return problem;
      for (size_t i = 0; i < count; ++i)
        if (out[i] != want(i)) return "all-reduce count " + std::to_string(count) + " element " + std::to_string(i);
      problem = check(comm, weftAllReduce(in.data(), in.data(), count, weftFloat32, op, comm, nullptr), "in place");
      if (!problem.empty()) return problem;
      for (size_t i = 0; i < count; ++i)
        if (in[i] != want(i)) return "in-place count " + std::to_string(count) + " element " + std::to_string(i);
    }
    // Reduce-scatter: block r of every rank's input to rank r.
    size_t block = 5003;
    std::vector<float> all(block * static_cast<size_t>(n)), mine(block, -1);
    for (size_t i = 0; i < all.size(); ++i) all[i] = input(rank, i);
    std::string problem = check(comm, weftReduceScatter(all.data(), mine.data(), block, weftFloat32, op, comm, nullptr),
                                "reduce-scatter");
    if (!problem.empty()) return problem;
    for (size_t i = 0; i < block; ++i)
      if (mine[i] != want(static_cast<size_t>(rank) * block + i)) return "reduce-scatter element " + std::to_string(i);
    // Reduce to rank 2.
    std::vector<float> in(block), root(block, -1);
    for (size_t i = 0; i < block; ++i) in[i] = input(rank, i);
    problem = check(comm, weftReduce(in.data(), root.data(), block, weftFloat32, op, 2, comm, nullptr), "reduce");
    if (!problem.empty()) return problem;
    if (rank == 2)
      for (size_t i = 0; i < block; ++i)
        if (root[i] != want(i)) return "reduce element " + std::to_string(i);
    return weftRedOpDestroy(op, comm) == weftSuccess ? "" : weftGetLastError(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(PreMulSumTest, AScalarByAddressIsReadWhenTheOperationRunsAndIntegersWrap) {
  auto failures = runRanks(3, GetParam(), [](weftComm_t comm, int rank, int n) -> std::string {
    int32_t scalar = 0;
    weftRedOp_t op;
    if (weftRedOpCreatePreMulSum(&op, &scalar, weftInt32, weftScalarDevice, comm) != weftSuccess)
      return weftGetLastError(comm);
    std::vector<int32_t> in(4096), out(4096);
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int32_t>(i) * (rank + 1) + INT32_MAX / 2;
    for (int32_t value : {-3, 7}) {
      scalar = value;  // read by address each time
      std::string problem =
          check(comm, weftAllReduce(in.data(), out.data(), in.size(), weftInt32, op, comm, nullptr), "int32");
      if (!problem.empty()) return problem;
      for (size_t i = 0; i < in.size(); ++i) {
        uint32_t sum = 0;
        for (int r = 0; r < n; ++r)
          sum +=
              static_cast<uint32_t>(static_cast<int32_t>(i) * (r + 1) + INT32_MAX / 2) * static_cast<uint32_t>(value);
        if (out[i] != static_cast<int32_t>(sum))
          return "scalar " + std::to_string(value) + " element " + std::to_string(i);
      }
    }
    return weftRedOpDestroy(op, comm) == weftSuccess ? "" : weftGetLastError(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(PreMulSumTest, WrongUseIsRefusedAndRanksThatDisagreeFail) {
  auto failures = runRanks(2, GetParam(), [](weftComm_t comm, int rank, int) -> std::string {
    double scalar = 2.0;
    weftRedOp_t op;
    if (weftRedOpCreatePreMulSum(&op, &scalar, weftFloat64, weftScalarHostImmediate, comm) != weftSuccess)
      return weftGetLastError(comm);
    std::vector<float> f(8, 1.0f);
    if (weftAllReduce(f.data(), f.data(), f.size(), weftFloat32, op, comm, nullptr) != weftInvalidArgument ||
        std::string(weftGetLastError(comm)).find("made for float64") == std::string::npos)
      return std::string("a float32 call with a float64 op: ") + weftGetLastError(comm);
    weftRedOp_t nothing;
    if (weftRedOpCreatePreMulSum(&nothing, nullptr, weftFloat64, weftScalarHostImmediate, comm) != weftInvalidArgument)
      return "a NULL scalar was accepted";
    weftRedOp_t second;
    if (weftRedOpCreatePreMulSum(&second, &scalar, weftFloat64, weftScalarHostImmediate, comm) != weftSuccess)
      return weftGetLastError(comm);
    std::vector<double> d(1000, 1.0), out(1000, 0);
    if (weftRedOpDestroy(second, comm) != weftSuccess) return weftGetLastError(comm);
    if (weftRedOpDestroy(second, comm) != weftInvalidArgument) return "destroyed twice";
    if (weftAllReduce(d.data(), out.data(), d.size(), weftFloat64, second, comm, nullptr) != weftInvalidArgument)
      return "a destroyed op was accepted";
    // Refused calls leave the communicator usable.
    std::string problem =
        check(comm, weftAllReduce(d.data(), out.data(), d.size(), weftFloat64, op, comm, nullptr), "after refusals");
    if (!problem.empty()) return problem;
    if (out[0] != 4.0) return "after refusals: " + std::to_string(out[0]) + " instead of 2 x 1 + 2 x 1";
    // One rank pre-multiplies where the other sums: a mismatch, at run time,
    // that names the pre-multiplied sum (or the peer's failure).
    weftAllReduce(d.data(), out.data(), d.size(), weftFloat64, rank == 0 ? op : weftSum, comm, nullptr);
    weftResult_t result = weftCommSynchronize(comm);
    if (result == weftInvalidUsage && std::string(weftGetLastError(comm)).find("premulsum") != std::string::npos)
      return "";
    if (result == weftRemoteError) return "";
    return std::string("a sum against a pre-multiplied sum: ") + weftGetErrorString(result) + ": " +
           weftGetLastError(comm);
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Modes, PreMulSumTest,
                         ::testing::Values(RankMode::Threads, RankMode::Processes, RankMode::Nodes),
                         [](const auto& info) { return std::string(modeName(info.param)); });

}  // namespace
}  // namespace weft::test
