// Send/receive: inside a group, in any posting order, to self, as an
// all-to-all, several messages to one peer in order, and sizes 0..1M+3.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "common/launcher.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

int64_t value(int from, int to, size_t i, int message = 0) {
  return static_cast<int64_t>(from) * 1000003 + to * 7919 + static_cast<int64_t>(i) * 31 + message;
}

class P2pTest : public ::testing::TestWithParam<RankMode> {};

TEST_P(P2pTest, RingExchangeInEitherPostingOrder) {
  auto failures = runRanks(4, GetParam(), [](weftComm_t comm, int rank, int n) -> std::string {
    for (size_t count : {size_t{0}, size_t{1}, size_t{1000}, size_t{(1 << 20) + 3}}) {
      for (int receiveFirst = 0; receiveFirst < 2; ++receiveFirst) {
        int next = (rank + 1) % n, prev = (rank + n - 1) % n;
        std::vector<int64_t> out(count), in(count, -1);
        for (size_t i = 0; i < count; ++i) out[i] = value(rank, next, i);
        weftGroupStart();
        if (receiveFirst) weftRecv(in.data(), count, weftInt64, prev, comm, nullptr);
        weftSend(out.data(), count, weftInt64, next, comm, nullptr);
        if (!receiveFirst) weftRecv(in.data(), count, weftInt64, prev, comm, nullptr);
        weftGroupEnd();
        if (weftCommSynchronize(comm) != weftSuccess) return weftGetLastError(comm);
        for (size_t i = 0; i < count; ++i)
          if (in[i] != value(prev, rank, i)) return "count " + std::to_string(count) + ": wrong element " + std::to_string(i);
      }
    }
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(P2pTest, AllToAllInOneGroupIncludingSelf) {
  auto failures = runRanks(5, GetParam(), [](weftComm_t comm, int rank, int n) -> std::string {
    const size_t count = 70001;
    std::vector<int64_t> out(count * n), in(count * n, -1);
    for (int to = 0; to < n; ++to)
      for (size_t i = 0; i < count; ++i) out[to * count + i] = value(rank, to, i);
    weftGroupStart();
    // Receives posted in reverse order of the sends, to show order does not matter.
    for (int p = n - 1; p >= 0; --p) weftRecv(in.data() + p * count, count, weftInt64, p, comm, nullptr);
    for (int p = 0; p < n; ++p) weftSend(out.data() + p * count, count, weftInt64, p, comm, nullptr);
    weftGroupEnd();
    if (weftCommSynchronize(comm) != weftSuccess) return weftGetLastError(comm);
    for (int from = 0; from < n; ++from)
      for (size_t i = 0; i < count; ++i)
        if (in[from * count + i] != value(from, rank, i))
          return "from rank " + std::to_string(from) + ": wrong element " + std::to_string(i);
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(P2pTest, SeveralMessagesToOnePeerArriveInOrder) {
  auto failures = runRanks(2, GetParam(), [](weftComm_t comm, int rank, int) -> std::string {
    const int messages = 5;
    const size_t count = 50000;
    std::vector<std::vector<int64_t>> bufs(messages, std::vector<int64_t>(count));
    weftGroupStart();
    for (int m = 0; m < messages; ++m) {
      if (rank == 0) {
        for (size_t i = 0; i < count; ++i) bufs[m][i] = value(0, 1, i, m);
        weftSend(bufs[m].data(), count, weftInt64, 1, comm, nullptr);
      } else {
        weftRecv(bufs[m].data(), count, weftInt64, 0, comm, nullptr);
      }
    }
    weftGroupEnd();
    if (weftCommSynchronize(comm) != weftSuccess) return weftGetLastError(comm);
    if (rank == 1)
      for (int m = 0; m < messages; ++m)
        for (size_t i = 0; i < count; ++i)
          if (bufs[m][i] != value(0, 1, i, m)) return "message " + std::to_string(m) + " out of order or wrong";
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(P2pTest, BlockingStyleSendThenRecvOutsideGroupsDoesNotDeadlockForOrderedPairs) {
  // Outside groups, each call is its own group: rank 0 sends then receives,
  // rank 1 receives then sends. Asynchronous calls make this complete.
  auto failures = runRanks(2, GetParam(), [](weftComm_t comm, int rank, int) -> std::string {
    std::vector<float> a(300000, static_cast<float>(rank)), b(300000, -1);
    int peer = 1 - rank;
    if (rank == 0) {
      weftSend(a.data(), a.size(), weftFloat32, peer, comm, nullptr);
      weftRecv(b.data(), b.size(), weftFloat32, peer, comm, nullptr);
    } else {
      weftRecv(b.data(), b.size(), weftFloat32, peer, comm, nullptr);
      weftSend(a.data(), a.size(), weftFloat32, peer, comm, nullptr);
    }
    if (weftCommSynchronize(comm) != weftSuccess) return weftGetLastError(comm);
    return b[299999] == static_cast<float>(peer) ? "" : "wrong data";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(P2pTest, MismatchedSizesAreReported) {
  auto failures = runRanks(2, GetParam(), [](weftComm_t comm, int rank, int) -> std::string {
    std::vector<int32_t> data(100, 0);
    if (rank == 0) weftSend(data.data(), 100, weftInt32, 1, comm, nullptr);
    else weftRecv(data.data(), 99, weftInt32, 0, comm, nullptr);
    weftResult_t result = weftCommSynchronize(comm);
    if (rank == 1 && result != weftInvalidUsage) return std::string("expected invalid usage, got ") + weftGetErrorString(result);
    if (rank == 1 && std::string(weftGetLastError(comm)).find("count=100") == std::string::npos)
      return std::string("message lacks the sender's count: ") + weftGetLastError(comm);
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Modes, P2pTest, ::testing::Values(RankMode::Threads, RankMode::Processes, RankMode::Nodes, RankMode::Nodes1),
                         [](const auto& info) { return std::string(modeName(info.param)); });

}  // namespace
}  // namespace weft::test
