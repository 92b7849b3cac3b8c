// Send/receive: inside a group, in any posting order, to self, as an
// all-to-all, several messages to one peer in order, and sizes 0..1M+3.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

#include "common/launcher.h"
#include "common/p2p_cases.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

class P2pTest : public ::testing::TestWithParam<RankMode> {};

TEST_P(P2pTest, RingExchangeInEitherPostingOrder) {
  auto failures = runRanks(4, GetParam(), ringExchange);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(P2pTest, AllToAllInOneGroupIncludingSelf) {
  auto failures =
      runRanks(5, GetParam(), [](weftComm_t comm, int rank, int n) { return allToAll(comm, rank, n, 70001); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(P2pTest, SeveralMessagesToOnePeerArriveInOrder) {
  auto failures = runRanks(2, GetParam(), orderedMessages);
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

TEST_P(P2pTest, AGroupOfFourThousandSendsAndReceivesCompletes) {
  // More operations than the executor's queue holds, and more bytes than a
  // caller runs inline: the group goes to the worker whole. Each message
  // carries its index, the sender and the element offset, so a message
  // delivered out of place or truncated is seen.
  auto failures = runRanks(2, GetParam(), [](weftComm_t comm, int rank, int) -> std::string {
    constexpr size_t kMessages = 4096, kCount = 160;  // 4096 x 640 B = 2.5 MiB each way
    int peer = 1 - rank;
    std::vector<int32_t> out(kMessages * kCount), in(kMessages * kCount, -1);
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<int32_t>(i * 2 + static_cast<size_t>(rank));
    weftGroupStart();
    for (size_t m = 0; m < kMessages; ++m) {
      if (weftSend(&out[m * kCount], kCount, weftInt32, peer, comm, nullptr) != weftSuccess ||
          weftRecv(&in[m * kCount], kCount, weftInt32, peer, comm, nullptr) != weftSuccess)
        return std::string("posting: ") + weftGetLastError(comm);
    }
    if (weftGroupEnd() != weftSuccess) return std::string("weftGroupEnd: ") + weftGetLastError(comm);
    if (weftCommSynchronize(comm) != weftSuccess) return std::string("synchronize: ") + weftGetLastError(comm);
    for (size_t i = 0; i < in.size(); ++i)
      if (in[i] != static_cast<int32_t>(i * 2 + static_cast<size_t>(peer)))
        return "element " + std::to_string(i) + " of message " + std::to_string(i / kCount) + " is " +
               std::to_string(in[i]);
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(P2pTest, MismatchedSizesAreReported) {
  auto failures = runRanks(2, GetParam(), [](weftComm_t comm, int rank, int) -> std::string {
    std::vector<int32_t> data(100, 0);
    if (rank == 0)
      weftSend(data.data(), 100, weftInt32, 1, comm, nullptr);
    else
      weftRecv(data.data(), 99, weftInt32, 0, comm, nullptr);
    weftResult_t result = weftCommSynchronize(comm);
    if (rank == 1 && result != weftInvalidUsage)
      return std::string("expected invalid usage, got ") + weftGetErrorString(result);
    if (rank == 1 && std::string(weftGetLastError(comm)).find("count=100") == std::string::npos)
      return std::string("message lacks the sender's count: ") + weftGetLastError(comm);
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Modes, P2pTest,
                         ::testing::Values(RankMode::Threads, RankMode::Processes, RankMode::Nodes, RankMode::Nodes1),
                         [](const auto& info) { return std::string(modeName(info.param)); });

}  // namespace
}  // namespace weft::test
