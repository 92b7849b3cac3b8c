// Send/receive: inside a group, in any posting order, to self, as an
// all-to-all, several messages to one peer in order, and sizes 0..1M+3;
// weftAllToAllv, built on them.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <thread>
#include <string>
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

// Separate calls, more than the executor's queue holds, while one rank is
// late: the others' first call waits for it past the caller's patience and
// goes to the worker, so the calls after it fill the queue, and a caller
// that finds it full runs the queue itself. All-reduces and broadcasts with
// every root, each on its own elements, must all come out exact.
TEST_P(P2pTest, MoreSeparateCallsThanTheQueueHoldsCompleteWhileAPeerIsLate) {
  auto failures = runRanks(3, GetParam(), [](weftComm_t comm, int rank, int n) -> std::string {
    constexpr size_t kCalls = 3000, kCount = 4;
    std::vector<int32_t> data(kCalls * kCount);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<int32_t>(i * 3 + static_cast<size_t>(rank));
    if (rank == n - 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (size_t c = 0; c < kCalls; ++c) {
      int32_t* slice = &data[c * kCount];
      weftResult_t posted =
          c % 2 == 0 ? weftAllReduce(slice, slice, kCount, weftInt32, weftSum, comm, nullptr)
                     : weftBroadcast(slice, slice, kCount, weftInt32, static_cast<int>(c % 3), comm, nullptr);
      if (posted != weftSuccess) return "call " + std::to_string(c) + ": " + weftGetLastError(comm);
    }
    if (weftCommSynchronize(comm) != weftSuccess) return std::string("synchronize: ") + weftGetLastError(comm);
    for (size_t i = 0; i < data.size(); ++i) {
      size_t c = i / kCount;
      int32_t base = static_cast<int32_t>(i * 3);
      int32_t want = c % 2 == 0 ? base * n + n * (n - 1) / 2 : base + static_cast<int32_t>(c % 3);
      if (data[i] != want)
        return "call " + std::to_string(c) + " element " + std::to_string(i % kCount) + ": " + std::to_string(data[i]) +
               " instead of " + std::to_string(want);
    }
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

// Uneven all-to-all: rank i sends (3i + 5j) % 7 elements to rank j (zero
// for some pairs), from blocks laid out in reverse order with a gap after
// each, into blocks in rank order with gaps; every element says who sent it,
// to whom and where, and the gaps must stay untouched.
size_t unevenCount(int from, int to) { return static_cast<size_t>((3 * from + 5 * to) % 7) * 1000 + (from == to); }
int32_t unevenValue(int from, int to, size_t k) {
  return static_cast<int32_t>(from * 1000000 + to * 10000 + static_cast<int32_t>(k % 10000));
}

TEST_P(P2pTest, AllToAllvMovesUnevenBlocksAtAnyDisplacement) {
  auto failures = runRanks(5, GetParam(), [](weftComm_t comm, int rank, int n) -> std::string {
    std::vector<size_t> sendCounts(n), sendDispls(n), recvCounts(n), recvDispls(n);
    size_t sendTotal = 0, recvTotal = 0;
    for (int peer = n - 1; peer >= 0; --peer) {  // reverse order: displacements need not ascend
      sendCounts[peer] = unevenCount(rank, peer);
      sendDispls[peer] = sendTotal;
      sendTotal += sendCounts[peer] + 1;
    }
    for (int peer = 0; peer < n; ++peer) {
      recvCounts[peer] = unevenCount(peer, rank);
      recvDispls[peer] = recvTotal;
      recvTotal += recvCounts[peer] + 1;
    }
    std::vector<int32_t> send(sendTotal, -7), recv(recvTotal, -9);
    for (int peer = 0; peer < n; ++peer)
      for (size_t k = 0; k < sendCounts[peer]; ++k) send[sendDispls[peer] + k] = unevenValue(rank, peer, k);
    for (int round = 0; round < 2; ++round) {  // twice: the communicator's numbering stays matched
      if (weftAllToAllv(send.data(), sendCounts.data(), sendDispls.data(), recv.data(), recvCounts.data(),
                        recvDispls.data(), weftInt32, comm, nullptr) != weftSuccess ||
          weftCommSynchronize(comm) != weftSuccess)
        return weftGetLastError(comm);
      for (int peer = 0; peer < n; ++peer) {
        for (size_t k = 0; k < recvCounts[peer]; ++k)
          if (recv[recvDispls[peer] + k] != unevenValue(peer, rank, k))
            return "element " + std::to_string(k) + " from rank " + std::to_string(peer) + " is wrong";
        if (recv[recvDispls[peer] + recvCounts[peer]] != -9)
          return "the gap after rank " + std::to_string(peer) + "'s block was written";
      }
    }
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(P2pTest, AllToAllvCountsThatDisagreeAcrossRanksAreReported) {
  auto failures = runRanks(3, GetParam(), [](weftComm_t comm, int rank, int n) -> std::string {
    std::vector<size_t> counts(n, 4), displs(n);
    for (int peer = 0; peer < n; ++peer) displs[peer] = 4 * static_cast<size_t>(peer);
    std::vector<size_t> recvCounts = counts;
    if (rank == 2) recvCounts[0] = 3;  // rank 0 sends 4
    std::vector<int64_t> send(4 * n, rank), recv(4 * n, -1);
    weftAllToAllv(send.data(), counts.data(), displs.data(), recv.data(), recvCounts.data(), displs.data(), weftInt64,
                  comm, nullptr);
    weftResult_t result = weftCommSynchronize(comm);
    if (rank == 2) {
      if (result != weftInvalidUsage) return std::string("expected invalid usage, got ") + weftGetErrorString(result);
      std::string message = weftGetLastError(comm);
      if (message.find("count=4") == std::string::npos || message.find("count=3") == std::string::npos)
        return "the message lacks both counts: " + message;
    }
    return "";  // the others may fail too (rank 2 stops), but none may hang
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_P(P2pTest, AllToAllvBadArgumentsAreRefusedAndTheCommunicatorStaysUsable) {
  auto failures = runRanks(2, GetParam(), [](weftComm_t comm, int rank, int n) -> std::string {
    std::vector<size_t> counts(n, 8), displs{0, 8}, huge{0, SIZE_MAX / 2};
    std::vector<float> send(16, static_cast<float>(rank)), recv(16, -1);
    auto expect = [&](weftResult_t got, const char* words, const char* what) -> std::string {
      if (got != weftInvalidArgument) return std::string(what) + ": expected invalid argument";
      if (std::string(weftGetLastError(comm)).find(words) == std::string::npos)
        return std::string(what) + ": unexpected message " + weftGetLastError(comm);
      return "";
    };
    std::string problem = expect(weftAllToAllv(send.data(), nullptr, displs.data(), recv.data(), counts.data(),
                                               displs.data(), weftFloat32, comm, nullptr),
                                 "NULL", "null counts");
    if (problem.empty())
      problem = expect(weftAllToAllv(send.data(), counts.data(), huge.data(), recv.data(), counts.data(), displs.data(),
                                     weftFloat32, comm, nullptr),
                       "overflows", "overflowing displacement");
    if (problem.empty())
      problem = expect(weftAllToAllv(send.data(), counts.data(), displs.data(), send.data() + 4, counts.data(),
                                     displs.data(), weftFloat32, comm, nullptr),
                       "overlap", "overlapping buffers");
    if (problem.empty())
      problem = expect(weftAllToAllv(nullptr, counts.data(), displs.data(), recv.data(), counts.data(), displs.data(),
                                     weftFloat32, comm, nullptr),
                       "sendbuff is NULL", "null buffer");
    if (!problem.empty()) return problem;
    // Still usable: a correct call now works.
    if (weftAllToAllv(send.data(), counts.data(), displs.data(), recv.data(), counts.data(), displs.data(), weftFloat32,
                      comm, nullptr) != weftSuccess ||
        weftCommSynchronize(comm) != weftSuccess)
      return weftGetLastError(comm);
    for (int peer = 0; peer < n; ++peer)
      if (recv[8 * peer] != static_cast<float>(peer)) return "wrong data after the refused calls";
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Modes, P2pTest,
                         ::testing::Values(RankMode::Threads, RankMode::Processes, RankMode::Nodes, RankMode::Nodes1),
                         [](const auto& info) { return std::string(modeName(info.param)); });

}  // namespace
}  // namespace weft::test
