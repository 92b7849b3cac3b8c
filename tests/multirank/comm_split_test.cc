// weftCommSplit and weftCommShrink: the new communicators have the members
// and order NCCL's semantics give, run exact collectives, and survivors of a
// killed rank shrink and go on training without it.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/launcher.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

// Sums value over comm; "" when it gives want.
std::string sumIs(weftComm_t comm, int64_t value, int64_t want, const char* what) {
  std::vector<int64_t> data(1000, value);
  if (weftAllReduce(data.data(), data.data(), data.size(), weftInt64, weftSum, comm, nullptr) != weftSuccess ||
      weftCommSynchronize(comm) != weftSuccess)
    return std::string(what) + ": " + weftGetLastError(comm) + "; ";
  if (data[0] != want || data[999] != want)
    return std::string(what) + ": sum " + std::to_string(data[999]) + ", expected " + std::to_string(want) + "; ";
  return "";
}

TEST(CommSplit, ColorsMakeGroupsOrderedByKeyAndNoColorGetsNone) {
  for (RankMode mode : {RankMode::Threads, RankMode::Processes}) {
    auto failures = runRanks(5, mode, [](weftComm_t comm, int rank, int) -> std::string {
      // Ranks 0..3 split by parity, ordered by descending rank; rank 4 takes no part.
      int color = rank == 4 ? WEFT_SPLIT_NOCOLOR : rank % 2;
      weftComm_t child = reinterpret_cast<weftComm_t>(1);
      if (weftCommSplit(comm, color, -rank, &child, nullptr) != weftSuccess)
        return std::string("split: ") + weftGetLastError(comm);
      std::string errors;
      if (rank == 4) {
        if (child != nullptr) errors += "WEFT_SPLIT_NOCOLOR gave a communicator; ";
      } else {
        int count = 0, childRank = -1;
        weftCommCount(child, &count);
        weftCommUserRank(child, &childRank);
        int want = rank >= 2 ? 0 : 1;  // keys -rank: the higher rank comes first
        if (count != 2 || childRank != want)
          errors += "count " + std::to_string(count) + " rank " + std::to_string(childRank) + ", expected 2 and " +
                    std::to_string(want) + "; ";
        errors += sumIs(child, rank, rank % 2 == 0 ? 0 + 2 : 1 + 3, "child all-reduce");
      }
      errors += sumIs(comm, rank, 0 + 1 + 2 + 3 + 4, "parent all-reduce after the split");
      // A second split in a row takes its own id.
      weftComm_t again = nullptr;
      if (weftCommSplit(comm, 0, rank, &again, nullptr) != weftSuccess)
        errors += "second split failed; ";
      else
        errors += sumIs(again, 1, 5, "second split");
      weftCommDestroy(again);
      if (child != nullptr) weftCommDestroy(child);
      return errors;
    });
    EXPECT_TRUE(failures.empty()) << modeName(mode) << ": " << joinFailures(failures);
  }
}

TEST(CommSplit, BadArgumentsAreRefusedAndTheCommunicatorStaysUsable) {
  auto failures = runRanks(2, RankMode::Threads, [](weftComm_t comm, int rank, int n) -> std::string {
    weftComm_t child = nullptr;
    std::string errors;
    if (weftCommSplit(comm, -5, 0, &child, nullptr) != weftInvalidArgument ||
        std::string(weftGetLastError(comm)).find("color=-5") == std::string::npos)
      errors += "negative color accepted; ";
    int self[] = {rank};
    if (weftCommShrink(comm, self, 1, &child, nullptr) != weftInvalidArgument ||
        std::string(weftGetLastError(comm)).find("this rank is in excludeRanks") == std::string::npos)
      errors += "a rank excluding itself was accepted; ";
    int twice[] = {1 - rank, 1 - rank};
    if (weftCommShrink(comm, twice, 2, &child, nullptr) != weftInvalidArgument) errors += "a duplicate accepted; ";
    int outside[] = {7};
    if (weftCommShrink(comm, outside, 1, &child, nullptr) != weftInvalidArgument) errors += "rank 7 accepted; ";
    errors += sumIs(comm, 1, n, "all-reduce after refused calls");
    return errors;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(CommShrink, SurvivorsOfAKilledRankShrinkAndKeepTraining) {
  setenv("WEFT_TIMEOUT", "10", 1);
  auto failures = runRanks(4, RankMode::Processes, [](weftComm_t comm, int rank, int) -> std::string {
    std::string errors = sumIs(comm, rank + 1, 1 + 2 + 3 + 4, "before the failure");
    if (rank == 2) raise(SIGKILL);
    // The survivors see the failure...
    std::vector<float> data(1 << 20, 1.0f);
    weftAllReduce(data.data(), data.data(), data.size(), weftFloat32, weftSum, comm, nullptr);
    if (weftCommSynchronize(comm) == weftSuccess) return "an all-reduce with a dead rank succeeded";
    // ...shrink it away, and train on.
    int dead[] = {2};
    weftComm_t survivors = nullptr;
    if (weftCommShrink(comm, dead, 1, &survivors, nullptr) != weftSuccess)
      return std::string("shrink: ") + weftGetLastError(comm);
    int count = 0, newRank = -1;
    weftCommCount(survivors, &count);
    weftCommUserRank(survivors, &newRank);
    int want = rank < 2 ? rank : rank - 1;
    if (count != 3 || newRank != want)
      errors += "count " + std::to_string(count) + " rank " + std::to_string(newRank) + "; ";
    for (int step = 0; step < 5; ++step) errors += sumIs(survivors, rank + 1 + step, 1 + 2 + 4 + 3 * step, "step");
    weftCommDestroy(survivors);
    return errors;  // the launcher destroys the failed parent
  });
  setenv("WEFT_TIMEOUT", "60", 1);
  ASSERT_EQ(failures.size(), 1u) << joinFailures(failures);  // rank 2, killed
  EXPECT_NE(failures[0].find("rank 2"), std::string::npos) << failures[0];
}

}  // namespace
}  // namespace weft::test
