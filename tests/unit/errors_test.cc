// Bad input gets a specific error naming the argument and the rank, and the
// communicator stays usable; mismatched calls, aborts, dead peers and silent
// peers end in clear errors, never hangs; nothing is left in /dev/shm.
#include <gtest/gtest.h>

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/launcher.h"
#include "weft/weft.h"

namespace weft {
namespace {

using test::RankMode;
using test::runRanks;

// Expects call to fail with code and a last-error text containing every word.
std::string expectError(weftComm_t comm, weftResult_t got, weftResult_t want, std::vector<std::string> words,
                        const char* what) {
  if (got != want)
    return std::string(what) + ": got " + weftGetErrorString(got) + " instead of " + weftGetErrorString(want) + "; ";
  std::string text = weftGetLastError(comm);
  for (const auto& word : words)
    if (text.find(word) == std::string::npos)
      return std::string(what) + ": message '" + text + "' lacks '" + word + "'; ";
  return "";
}

std::string allReduceWorks(weftComm_t comm, int n) {
  std::vector<int32_t> data(1000, 1);
  if (weftAllReduce(data.data(), data.data(), data.size(), weftInt32, weftSum, comm, nullptr) != weftSuccess ||
      weftCommSynchronize(comm) != weftSuccess)
    return std::string("communicator unusable after argument errors: ") + weftGetLastError(comm) + "; ";
  return data[999] == n ? "" : "wrong result after argument errors; ";
}

TEST(Errors, BadArgumentsGetSpecificErrorsAndTheCommunicatorStaysUsable) {
  auto failures = runRanks(2, RankMode::Threads, [](weftComm_t comm, int rank, int n) -> std::string {
    std::string errors;
    std::vector<float> buffer(64);
    float* data = buffer.data();
    std::string rankText = "rank " + std::to_string(rank);
    errors += expectError(comm, weftAllReduce(nullptr, data, 8, weftFloat32, weftSum, comm, nullptr),
                          weftInvalidArgument, {"sendbuff", "NULL", rankText}, "null sendbuff");
    errors += expectError(comm, weftAllReduce(data, nullptr, 8, weftFloat32, weftSum, comm, nullptr),
                          weftInvalidArgument, {"recvbuff", "NULL"}, "null recvbuff");
    errors += expectError(
        comm, weftAllReduce(reinterpret_cast<char*>(data) + 1, data, 8, weftFloat32, weftSum, comm, nullptr),
        weftInvalidArgument, {"aligned"}, "misaligned");
    errors += expectError(comm, weftAllReduce(data, data, SIZE_MAX / 2, weftFloat32, weftSum, comm, nullptr),
                          weftInvalidArgument, {"overflows"}, "count overflow");
    errors += expectError(comm, weftAllGather(data, data, SIZE_MAX / 2 + 1, weftInt8, comm, nullptr),
                          weftInvalidArgument, {"overflows"}, "all-gather total overflow");
    errors += expectError(comm, weftAllReduce(data, data, 8, static_cast<weftDataType_t>(42), weftSum, comm, nullptr),
                          weftInvalidArgument, {"datatype 42"}, "invalid type");
    errors += expectError(comm, weftAllReduce(data, data, 8, weftFloat32, static_cast<weftRedOp_t>(-1), comm, nullptr),
                          weftInvalidArgument, {"op -1"}, "invalid op");
    errors += expectError(comm, weftBroadcast(data, data, 8, weftFloat32, 2, comm, nullptr), weftInvalidArgument,
                          {"root=2"}, "invalid root");
    errors += expectError(comm, weftReduce(data, data, 8, weftFloat32, weftSum, -1, comm, nullptr), weftInvalidArgument,
                          {"root=-1"}, "negative root");
    errors += expectError(comm, weftSend(data, 8, weftFloat32, 5, comm, nullptr), weftInvalidArgument, {"peer=5"},
                          "invalid peer");
    errors += expectError(comm, weftRecv(data, 8, weftFloat32, -3, comm, nullptr), weftInvalidArgument, {"peer=-3"},
                          "negative peer");
    int fakeStream;
    errors += expectError(comm, weftAllReduce(data, data, 8, weftFloat32, weftSum, comm, &fakeStream),
                          weftInvalidArgument, {"stream"}, "stream on a host communicator");
    errors += expectError(nullptr, weftGroupEnd(), weftInvalidUsage, {"weftGroupStart"}, "unmatched group end");
    // Count 0 with null buffers is fine, as in NCCL.
    if (weftAllReduce(nullptr, nullptr, 0, weftFloat32, weftSum, comm, nullptr) != weftSuccess)
      errors += "count 0 with NULL buffers refused; ";
    errors += allReduceWorks(comm, n);
    return errors;
  });
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

TEST(Errors, AnArgumentErrorInAGroupFailsTheWholeGroupAndSubmitsNothing) {
  auto failures = runRanks(2, RankMode::Processes, [](weftComm_t comm, int rank, int n) -> std::string {
    std::vector<float> a(100, static_cast<float>(rank + 1)), b(100, 0);
    int peer = 1 - rank;
    unsigned long long seqBefore = 0, seqAfter = 0;
    weftCommGetSeq(comm, &seqBefore);
    std::string errors;
    weftGroupStart();
    if (weftSend(a.data(), a.size(), weftFloat32, peer, comm, nullptr) != weftSuccess)
      errors += "a valid send in the group was refused; ";
    errors += expectError(comm, weftRecv(nullptr, 100, weftFloat32, peer, comm, nullptr), weftInvalidArgument,
                          {"recvbuff", "NULL"}, "null recvbuff in a group");
    errors += expectError(comm, weftGroupEnd(), weftInvalidArgument,
                          {"weftGroupEnd", "none of the group's 1 accepted", "recvbuff", "NULL"},
                          "weftGroupEnd after a refused call");
    weftCommGetSeq(comm, &seqAfter);
    if (seqAfter != seqBefore) errors += "the failed group left its sequence numbers taken; ";
    // Nothing of it was sent: the next collective and a fresh exchange match.
    errors += allReduceWorks(comm, n);
    weftGroupStart();
    weftSend(a.data(), a.size(), weftFloat32, peer, comm, nullptr);
    weftRecv(b.data(), b.size(), weftFloat32, peer, comm, nullptr);
    if (weftGroupEnd() != weftSuccess || weftCommSynchronize(comm) != weftSuccess)
      errors += std::string("exchange after the failed group: ") + weftGetLastError(comm) + "; ";
    else if (b[99] != static_cast<float>(peer + 1))
      errors += "exchange after the failed group got " + std::to_string(b[99]) + "; ";
    // A collective refused inside a group fails it the same way.
    weftGroupStart();
    weftAllReduce(a.data(), b.data(), a.size(), weftFloat32, weftSum, comm, nullptr);
    weftBroadcast(a.data(), b.data(), a.size(), weftFloat32, 7, comm, nullptr);
    errors += expectError(comm, weftGroupEnd(), weftInvalidArgument, {"root=7"}, "refused broadcast in a group");
    errors += allReduceWorks(comm, n);
    return errors;
  });
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

TEST(Errors, DestroyedAndNullCommunicatorsAreRejected) {
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  weftComm_t comm = nullptr;
  ASSERT_EQ(weftCommInitRank(&comm, 1, id, 0), weftSuccess);
  ASSERT_EQ(weftCommDestroy(comm), weftSuccess);
  float x = 1;
  EXPECT_EQ(weftAllReduce(&x, &x, 1, weftFloat32, weftSum, comm, nullptr), weftInvalidArgument);
  EXPECT_NE(std::string(weftGetLastError(comm)).find("not a live communicator"), std::string::npos);
  EXPECT_EQ(weftCommDestroy(comm), weftInvalidArgument);
  EXPECT_EQ(weftAllReduce(&x, &x, 1, weftFloat32, weftSum, nullptr, nullptr), weftInvalidArgument);
  int count = 0;
  EXPECT_EQ(weftCommCount(nullptr, &count), weftInvalidArgument);
  EXPECT_EQ(weftCommInitRank(&comm, 0, id, 0), weftInvalidArgument);
  EXPECT_EQ(weftCommInitRank(&comm, 2, id, 2), weftInvalidArgument);
  EXPECT_NE(std::string(weftGetLastError(nullptr)).find("rank 2"), std::string::npos);
  EXPECT_STREQ(weftGetErrorString(weftTimeout), "timeout waiting for a peer");
  int version = 0;
  EXPECT_EQ(weftGetVersion(&version), weftSuccess);
  EXPECT_EQ(version, WEFT_VERSION_CODE);
}

TEST(Errors, MismatchedCountsAcrossRanksAreReported) {
  auto failures = runRanks(2, RankMode::Processes, [](weftComm_t comm, int rank, int) -> std::string {
    std::vector<float> data(1000, 1.0f);
    size_t count = rank == 0 ? 1000 : 999;
    weftAllReduce(data.data(), data.data(), count, weftFloat32, weftSum, comm, nullptr);
    weftResult_t result = weftCommSynchronize(comm);
    return expectError(comm, result, weftInvalidUsage, {"mismatched calls", "count=999", "count=1000"},
                       "mismatched count");
  });
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

TEST(Errors, MismatchedCollectivesAcrossRanksAreReported) {
  auto failures = runRanks(3, RankMode::Threads, [](weftComm_t comm, int rank, int) -> std::string {
    std::vector<float> data(4096, 1.0f);
    if (rank == 1)
      weftBroadcast(data.data(), data.data(), data.size(), weftFloat32, 0, comm, nullptr);
    else
      weftAllReduce(data.data(), data.data(), data.size(), weftFloat32, weftSum, comm, nullptr);
    weftResult_t result = weftCommSynchronize(comm);
    if (result != weftInvalidUsage && result != weftRemoteError)
      return std::string("expected an error, got ") + weftGetErrorString(result);
    weftResult_t async = weftSuccess;
    weftCommGetAsyncError(comm, &async);
    if (async == weftSuccess) return "weftCommGetAsyncError reports success after a failure";
    // Further calls report the failure instead of running.
    float x = 0;
    if (weftAllReduce(&x, &x, 1, weftFloat32, weftSum, comm, nullptr) == weftSuccess)
      return "a failed communicator accepted new work";
    return "";
  });
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

// Ranks that disagree on the root: at least one rank fails in the call itself
// naming both roots (every rank checks the root with the rank before it in
// the ring, so a disagreement cannot pass all the way round), nobody waits
// for a timeout, and every rank has failed by its next call.
// count: 4096 fits one slot; 4M floats take 128 slices, where a rank that
// checks its token only in its last slice must still not wait forever.
// Each rank frees its buffers as soon as its call has failed: a peer thread
// that was lent them by address must have finished with them (16 MiB goes
// by address between thread ranks; freed, it is unmapped).
enum class Rooted { Broadcast, Reduce, Gather, Scatter };

void expectRootMismatchFound(int nranks, RankMode mode, Rooted which, std::vector<int> roots, size_t count = 4096) {
  std::atomic<int> namedInCall{0};
  auto failures = runRanks(nranks, mode, [&](weftComm_t comm, int rank, int n) -> std::string {
    // Room for gather's and scatter's n blocks.
    auto data = std::make_unique<std::vector<float>>(count * n, 1.0f);
    auto out = std::make_unique<std::vector<float>>(count * n, 0.0f);
    auto start = std::chrono::steady_clock::now();
    switch (which) {
      case Rooted::Reduce:
        weftReduce(data->data(), out->data(), count, weftFloat32, weftSum, roots[rank], comm, nullptr);
        break;
      case Rooted::Broadcast:
        weftBroadcast(data->data(), out->data(), count, weftFloat32, roots[rank], comm, nullptr);
        break;
      case Rooted::Gather: weftGather(data->data(), out->data(), count, weftFloat32, roots[rank], comm, nullptr); break;
      case Rooted::Scatter:
        weftScatter(data->data(), out->data(), count, weftFloat32, roots[rank], comm, nullptr);
        break;
    }
    weftResult_t inCall = weftCommSynchronize(comm);
    data.reset();
    out.reset();
    std::string text = weftGetLastError(comm);
    if (inCall == weftInvalidUsage && text.find("mismatched calls") != std::string::npos &&
        text.find("root=" + std::to_string(roots[rank])) != std::string::npos)
      ++namedInCall;  // counted across processes by the exit below
    if (inCall == weftSuccess) {
      float x = 1;
      weftAllReduce(&x, &x, 1, weftFloat32, weftSum, comm, nullptr);
      if (weftCommSynchronize(comm) == weftSuccess) return "neither the call nor the next one failed";
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (seconds > 10) return "took " + std::to_string(seconds) + " s: " + text;
    // Processes report through their exit: a rank that named the mismatch says so.
    if (mode == RankMode::Processes && inCall == weftInvalidUsage && text.find("root=") != std::string::npos)
      return "named:" + text;
    return "";
  });
  int named = namedInCall.load();
  std::vector<std::string> others;
  for (const auto& failure : failures)
    if (failure.find("named:") != std::string::npos)
      ++named;
    else
      others.push_back(failure);
  EXPECT_TRUE(others.empty()) << test::joinFailures(others);
  EXPECT_GE(named, 1) << "no rank named the root mismatch in the call itself";
}

TEST(Errors, BroadcastWithDifferentRootsFailsInTheCallItself) {
  expectRootMismatchFound(2, RankMode::Processes, Rooted::Broadcast, {0, 1});
  expectRootMismatchFound(3, RankMode::Threads, Rooted::Broadcast, {0, 1, 2});
  expectRootMismatchFound(3, RankMode::Threads, Rooted::Broadcast, {0, 0, 1});
  expectRootMismatchFound(4, RankMode::Threads, Rooted::Broadcast, {2, 2, 2, 3});
  expectRootMismatchFound(3, RankMode::Threads, Rooted::Broadcast, {1, 2, 0}, 1 << 22);  // nobody believes to be root
  expectRootMismatchFound(4, RankMode::Processes, Rooted::Broadcast, {0, 0, 0, 1}, 1 << 22);
}

TEST(Errors, ReduceWithDifferentRootsFailsInTheCallItself) {
  expectRootMismatchFound(2, RankMode::Processes, Rooted::Reduce, {0, 1});
  expectRootMismatchFound(3, RankMode::Threads, Rooted::Reduce, {0, 1, 2});
  expectRootMismatchFound(3, RankMode::Threads, Rooted::Reduce, {1, 1, 0});
  expectRootMismatchFound(4, RankMode::Threads, Rooted::Reduce, {3, 0, 0, 0});
  expectRootMismatchFound(4, RankMode::Threads, Rooted::Reduce, {3, 0, 0, 0}, 1 << 22);
  expectRootMismatchFound(4, RankMode::Processes, Rooted::Reduce, {1, 1, 2, 1}, 1 << 22);
}

// The tree's broadcast and reduce: data moves along the tree, not the ring,
// and the ring tokens still find a disagreement in the call.
TEST(Errors, TreeBroadcastAndReduceWithDifferentRootsFailInTheCallItself) {
  setenv("WEFT_ALGO", "tree", 1);
  for (Rooted which : {Rooted::Broadcast, Rooted::Reduce}) {
    expectRootMismatchFound(2, RankMode::Processes, which, {0, 1});
    expectRootMismatchFound(3, RankMode::Threads, which, {0, 1, 2});
    expectRootMismatchFound(5, RankMode::Threads, which, {0, 0, 0, 0, 3});
    expectRootMismatchFound(4, RankMode::Threads, which, {1, 2, 3, 0}, 1 << 22);  // nobody believes to be root
    expectRootMismatchFound(4, RankMode::Processes, which, {2, 2, 2, 1}, 1 << 22);
  }
  unsetenv("WEFT_ALGO");
}

TEST(Errors, GatherAndScatterWithDifferentRootsFailInTheCallItself) {
  for (Rooted which : {Rooted::Gather, Rooted::Scatter}) {
    expectRootMismatchFound(2, RankMode::Processes, which, {0, 1});
    expectRootMismatchFound(3, RankMode::Threads, which, {0, 1, 2});
    expectRootMismatchFound(3, RankMode::Threads, which, {1, 2, 0}, 1 << 20);  // nobody believes to be root
    expectRootMismatchFound(4, RankMode::Threads, which, {2, 2, 2, 3}, 1 << 20);
  }
}

TEST(Errors, AbortMakesPeersFailWithARemoteError) {
  auto failures = runRanks(2, RankMode::Processes, [](weftComm_t comm, int rank, int) -> std::string {
    std::vector<float> data(1 << 20, 1.0f);
    if (rank == 1) {
      usleep(200000);
      weftCommAbort(comm);
      // The launcher destroys comm; give it a fresh one-rank communicator instead.
      _exit(0);
    }
    auto start = std::chrono::steady_clock::now();
    weftAllReduce(data.data(), data.data(), data.size(), weftFloat32, weftSum, comm, nullptr);
    weftResult_t result = weftCommSynchronize(comm);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string error = expectError(comm, result, weftRemoteError, {"rank 1", "abort"}, "peer aborted");
    if (seconds > 10) error += "took " + std::to_string(seconds) + " s; ";
    return error;
  });
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

// A sender that has left its call (here because rank 2 aborted the
// communicator after the sender lent its buffer) may let go of the buffer a
// peer reads by cross-memory attach: the reader's error names the failure
// that made the sender leave, not the address that went bad. The buffer is
// inaccessible from the start, so the read fails every time rather than in a
// race with the sender's free; the ranks take turns through marker files:
// rank 0 lends its buffer, rank 2 aborts, rank 1 reads while rank 0 is
// still there.
TEST(Errors, AReadOfALeftBufferNamesTheFailureNotTheAddress) {
  setenv("WEFT_CMA", "1", 1);
  setenv("WEFT_CMA_THRESHOLD", "0", 1);
  std::string marker = "/tmp/weft-left-buffer-" + std::to_string(getpid());
  auto turn = [&](int step) { return marker + "." + std::to_string(step); };
  auto mark = [&](int step) {
    FILE* f = fopen(turn(step).c_str(), "w");
    if (f != nullptr) fclose(f);
  };
  auto awaitTurn = [&](int step) {
    for (int i = 0; i < 10000 && access(turn(step).c_str(), F_OK) != 0; ++i) usleep(1000);
  };
  auto failures = runRanks(3, RankMode::Processes, [&](weftComm_t comm, int rank, int) -> std::string {
    const size_t count = 1 << 16;
    if (rank == 2) {
      awaitTurn(1);
      weftCommAbort(comm);
      mark(2);
      sleep(3);  // alive while the others fail: their error is the abort, not a death
      _exit(0);
    }
    weftResult_t result;
    if (rank == 0) {
      void* gone = mmap(nullptr, count * sizeof(float), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      result = weftSend(gone, count, weftFloat32, 1, comm, nullptr);
      usleep(200000);  // the send has lent the buffer by now
      mark(1);
      if (result == weftSuccess) result = weftCommSynchronize(comm);
      awaitTurn(3);  // alive while rank 1 reads, as a peer that has only let its buffer go
      munmap(gone, count * sizeof(float));
    } else {
      awaitTurn(2);
      std::vector<float> data(count);
      result = weftRecv(data.data(), count, weftFloat32, 0, comm, nullptr);
      if (result == weftSuccess) result = weftCommSynchronize(comm);
      mark(3);
    }
    std::string error = expectError(comm, result, weftRemoteError, {"rank 2", "abort"}, "left buffer");
    std::string text = weftGetLastError(comm);
    if (text.find("Bad address") != std::string::npos) error += "the error names the address: " + text + "; ";
    // The cause was reported on this node: no peer is called silent.
    if (text.find("not responding") != std::string::npos) error += "the error calls a peer silent: " + text + "; ";
    return error;
  });
  for (int step : {1, 2, 3}) unlink(turn(step).c_str());
  unsetenv("WEFT_CMA");
  unsetenv("WEFT_CMA_THRESHOLD");
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

TEST(Errors, AKilledPeerMakesTheOthersFailQuicklyNamingIt) {
  auto failures = runRanks(3, RankMode::Processes, [](weftComm_t comm, int rank, int) -> std::string {
    std::vector<float> data(1 << 22, 1.0f);
    // A first call completes, then rank 2 dies in the middle of the second.
    weftAllReduce(data.data(), data.data(), data.size(), weftFloat32, weftSum, comm, nullptr);
    if (weftCommSynchronize(comm) != weftSuccess) return std::string("first call: ") + weftGetLastError(comm);
    if (rank == 2) {
      usleep(100000);
      raise(SIGKILL);
    }
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i)
      weftAllReduce(data.data(), data.data(), data.size(), weftFloat32, weftSum, comm, nullptr);
    weftResult_t result = weftCommSynchronize(comm);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string error = expectError(comm, result, weftRemoteError, {"rank 2"}, "dead peer");
    if (seconds > 10) error += "took " + std::to_string(seconds) + " s; ";
    return error;
  });
  // Rank 2 itself was killed: its entry says so; the others must have passed.
  ASSERT_EQ(failures.size(), 1u) << test::joinFailures(failures);
  EXPECT_NE(failures[0].find("rank 2"), std::string::npos) << failures[0];
}

TEST(Errors, ASilentPeerEndsInATimeout) {
  setenv("WEFT_TIMEOUT", "2", 1);
  auto failures = runRanks(2, RankMode::Threads, [](weftComm_t comm, int rank, int) -> std::string {
    if (rank == 1) {
      usleep(3500000);  // alive, but never joins the call
      return "";
    }
    float x = 1;
    weftAllReduce(&x, &x, 1, weftFloat32, weftSum, comm, nullptr);
    return expectError(comm, weftCommSynchronize(comm), weftTimeout, {"WEFT_TIMEOUT"}, "silent peer");
  });
  setenv("WEFT_TIMEOUT", "60", 1);
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

// A send that fails after lending its buffer by address (threads of one
// process) does not return while the receiver may still read it: rank 0's
// call times out before rank 1 even posts its receive, rank 0 then unmaps
// its buffer, and rank 1 reads. Returning at the timeout, the read would
// fault on unmapped memory.
TEST(Errors, AFailedSendByAddressReturnsOnlyOnceThePeerIsDoneWithTheBuffer) {
  setenv("WEFT_TIMEOUT", "1", 1);
  constexpr size_t kBytes = 8u << 20;
  auto failures = runRanks(2, RankMode::Threads, [&](weftComm_t comm, int rank, int) -> std::string {
    if (rank == 0) {
      void* buffer = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (buffer == MAP_FAILED) return "mmap failed";
      memset(buffer, 0x5a, kBytes);
      weftSend(buffer, kBytes, weftUint8, 1, comm, nullptr);
      weftResult_t result = weftCommSynchronize(comm);
      munmap(buffer, kBytes);
      if (result == weftSuccess) return "the send succeeded although its receiver came after the timeout";
      return "";
    }
    usleep(1600000);
    std::vector<uint8_t> in(kBytes, 0);
    weftRecv(in.data(), kBytes, weftUint8, 0, comm, nullptr);
    if (weftCommSynchronize(comm) != weftSuccess) return "";  // the sender's failure reached it: fine
    for (size_t i = 0; i < kBytes; ++i)
      if (in[i] != 0x5a) return "a successful receive has wrong data at byte " + std::to_string(i);
    return "";
  });
  setenv("WEFT_TIMEOUT", "60", 1);
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

TEST(Errors, AStoppedRankIsNamedByEveryOtherRankWithItsLastCall) {
  setenv("WEFT_TIMEOUT", "2", 1);
  auto failures = runRanks(4, RankMode::Processes, [](weftComm_t comm, int rank, int n) -> std::string {
    std::vector<float> data(1 << 16, 1.0f);
    for (int i = 0; i < 3; ++i)  // calls #0..#2 complete everywhere
      weftAllReduce(data.data(), data.data(), data.size(), weftFloat32, weftSum, comm, nullptr);
    if (weftCommSynchronize(comm) != weftSuccess) return std::string("first calls: ") + weftGetLastError(comm);
    if (rank == 2) {
      // Stopped, not dead: its sockets stay open and its process exists. A
      // helper ends it once the others have had their say.
      pid_t self = getpid();
      if (fork() == 0) {
        sleep(5);
        kill(self, SIGKILL);
        _exit(0);
      }
      raise(SIGSTOP);
    }
    auto start = std::chrono::steady_clock::now();
    weftAllReduce(data.data(), data.data(), data.size(), weftFloat32, weftSum, comm, nullptr);
    weftResult_t result = weftCommSynchronize(comm);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string text = weftGetLastError(comm);
    std::string errors;
    if (result != weftTimeout && result != weftRemoteError)
      errors += std::string("got ") + weftGetErrorString(result) + "; ";
    for (const char* word :
         {"rank 2 (", "is not responding", "its last completed call is #2 AllReduce", "wait in #3 AllReduce"})
      if (text.find(word) == std::string::npos) errors += std::string("message lacks '") + word + "'; ";
    if (seconds > 2 + 2.5) errors += "took " + std::to_string(seconds) + " s (WEFT_TIMEOUT=2); ";
    (void)n;
    return errors.empty() ? "" : errors + "message: " + text;
  });
  setenv("WEFT_TIMEOUT", "60", 1);
  // Rank 2 itself was killed by its helper; the others must have passed.
  ASSERT_EQ(failures.size(), 1u) << test::joinFailures(failures);
  EXPECT_NE(failures[0].find("rank 2"), std::string::npos) << failures[0];
}

TEST(Errors, NothingIsLeftInDevShm) {
  // Runs after crashes and aborts above (same process, in order).
  DIR* dir = opendir("/dev/shm");
  ASSERT_NE(dir, nullptr);
  std::vector<std::string> left;
  while (dirent* entry = readdir(dir))
    if (std::string(entry->d_name).rfind("weft-", 0) == 0) left.push_back(entry->d_name);
  closedir(dir);
  EXPECT_TRUE(left.empty()) << "left in /dev/shm: " << left.size() << " segment(s), first " << left[0];
}

}  // namespace
}  // namespace weft

namespace weft {
namespace {

TEST(Errors, AbortFromAnotherThreadUnblocksACallerWaitingOnIt) {
  // Rank 1 never joins; rank 0's caller thread blocks in a small all-reduce
  // that it drives itself, and a second thread aborts the communicator.
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  weftComm_t comms[2] = {nullptr, nullptr};
  std::thread peer([&] { weftCommInitRank(&comms[1], 2, id, 1); });
  ASSERT_EQ(weftCommInitRank(&comms[0], 2, id, 0), weftSuccess);
  peer.join();
  ASSERT_NE(comms[1], nullptr);
  std::atomic<int> result{-1};
  std::thread caller([&] {
    float x = 1;
    weftAllReduce(&x, &x, 1, weftFloat32, weftSum, comms[0], nullptr);
    result = weftCommSynchronize(comms[0]);
  });
  usleep(300000);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(weftCommAbort(comms[0]), weftSuccess);
  caller.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 5.0);
  EXPECT_NE(result.load(), weftSuccess);
  weftCommAbort(comms[1]);
}

}  // namespace
}  // namespace weft
