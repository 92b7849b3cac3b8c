// The C++ API: RAII communicators, typed spans, per-operation work handles.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "weft/weft.hpp"

namespace weft {
namespace {

TEST(CppApi, WorkHandlesCompleteInOrderAndErrorsThrow) {
  UniqueId id = UniqueId::create();
  std::vector<std::thread> ranks;
  std::atomic<int> ok{0};
  for (int r = 0; r < 3; ++r)
    ranks.emplace_back([&, r] {
      Communicator comm(3, id, r);
      EXPECT_EQ(comm.rank(), r);
      EXPECT_EQ(comm.size(), 3);
      std::vector<float> grads(1 << 18, 1.0f + r), out(1 << 18);
      Work first = comm.allReduce<float>(std::span<const float>(grads), std::span<float>(out));
      std::vector<double> small(3, r);
      Work second = comm.allReduce<double>(std::span<double>(small), weftMax);
      EXPECT_GT(second.sequence(), first.sequence());
      second.wait();
      EXPECT_TRUE(first.test());  // completed in order, before the second
      EXPECT_EQ(out[12345], 6.0f);
      EXPECT_EQ(small[2], 2.0);
      std::vector<int32_t> gathered(3 * 2), mine{r, 10 * r};
      comm.allGather<int32_t>(std::span<const int32_t>(mine), std::span<int32_t>(gathered)).wait();
      EXPECT_EQ(gathered[5], 20);
      {
        Group group;
        std::vector<int64_t> to(4, r), from(4, -1);
        comm.send<int64_t>(std::span<const int64_t>(to), (r + 1) % 3);
        Work received = comm.recv<int64_t>(std::span<int64_t>(from), (r + 2) % 3);
        group.end();
        received.wait();
        EXPECT_EQ(from[3], (r + 2) % 3);
      }
      try {
        comm.broadcast<float>(std::span<float>(grads), 7);
        ADD_FAILURE() << "invalid root did not throw";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), weftInvalidArgument);
        EXPECT_NE(std::string(e.what()).find("root=7"), std::string::npos) << e.what();
      }
      comm.synchronize();
      ++ok;
    });
  for (auto& t : ranks) t.join();
  EXPECT_EQ(ok.load(), 3);
}

// All-to-all (even and uneven), gather and scatter through the typed spans.
TEST(CppApi, AllToAllGatherAndScatterMoveBlocksWhereTheyBelong) {
  UniqueId id = UniqueId::create();
  std::vector<std::thread> ranks;
  std::atomic<int> ok{0};
  for (int r = 0; r < 3; ++r)
    ranks.emplace_back([&, r] {
      Communicator comm(3, id, r);
      std::vector<int32_t> send(6), recv(6, -1);
      for (int j = 0; j < 3; ++j) send[2 * j] = 10 * r + j, send[2 * j + 1] = 100 + r;  // block j for rank j
      comm.allToAll<int32_t>(std::span<const int32_t>(send), std::span<int32_t>(recv)).wait();
      for (int j = 0; j < 3; ++j) {
        EXPECT_EQ(recv[2 * j], 10 * j + r);
        EXPECT_EQ(recv[2 * j + 1], 100 + j);
      }
      // Uneven: rank r sends j + 1 copies of 10r + j to rank j, packed.
      std::vector<size_t> sendCounts, sendDispls, recvCounts(3, static_cast<size_t>(r) + 1), recvDispls;
      std::vector<int32_t> vsend, vrecv(3 * (static_cast<size_t>(r) + 1), -1);
      for (int j = 0; j < 3; ++j) {
        sendDispls.push_back(vsend.size());
        sendCounts.push_back(static_cast<size_t>(j) + 1);
        vsend.insert(vsend.end(), static_cast<size_t>(j) + 1, 10 * r + j);
        recvDispls.push_back(static_cast<size_t>(j) * (static_cast<size_t>(r) + 1));
      }
      comm.allToAllv<int32_t>(vsend, sendCounts, sendDispls, vrecv, recvCounts, recvDispls).wait();
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k <= r; ++k) EXPECT_EQ(vrecv[static_cast<size_t>(j * (r + 1) + k)], 10 * j + r);
      // PreMulSum: rank r scales by r + 1, so the sum of 1s is 1 + 2 + 3.
      weftRedOp_t scaled = comm.preMulSum<double>(static_cast<double>(r) + 1);
      std::vector<double> ones(5, 1.0), sums(5, 0);
      comm.allReduce<double>(std::span<const double>(ones), std::span<double>(sums), scaled).wait();
      EXPECT_EQ(sums, std::vector<double>(5, 6.0));
      comm.destroyOp(scaled);
      EXPECT_THROW(comm.destroyOp(scaled), Error);
      std::vector<size_t> tooFar = recvDispls;
      tooFar[2] = vrecv.size();
      EXPECT_THROW(comm.allToAllv<int32_t>(vsend, sendCounts, sendDispls, vrecv, recvCounts, tooFar), Error);
      std::vector<int64_t> mine{r, r * r}, all(r == 1 ? 6 : 0);
      comm.gather<int64_t>(std::span<const int64_t>(mine), std::span<int64_t>(all), 1).wait();
      if (r == 1) EXPECT_EQ(all, (std::vector<int64_t>{0, 0, 1, 1, 2, 4}));
      std::vector<double> blocks(r == 2 ? 3 : 0), one(1, -1);
      if (r == 2) blocks = {0.5, 1.5, 2.5};
      comm.scatter<double>(std::span<const double>(blocks), std::span<double>(one), 2).wait();
      EXPECT_EQ(one[0], r + 0.5);
      ++ok;
    });
  for (auto& t : ranks) t.join();
  EXPECT_EQ(ok.load(), 3);
}

// split and shrink from C++: even and odd ranks in two halves ordered by
// descending key, one rank left out; then the survivors of "rank 3" shrink.
TEST(CppApi, SplitAndShrinkMakeChildCommunicators) {
  UniqueId id = UniqueId::create();
  std::vector<std::thread> ranks;
  std::atomic<int> ok{0};
  for (int r = 0; r < 5; ++r)
    ranks.emplace_back([&, r] {
      Communicator comm(5, id, r);
      int color = r == 4 ? WEFT_SPLIT_NOCOLOR : r % 2;
      Communicator half = comm.split(color, -r);
      if (r == 4) {
        EXPECT_FALSE(half);
      } else {
        ASSERT_TRUE(half);
        EXPECT_EQ(half.size(), 2);
        EXPECT_EQ(half.rank(), r < 2 ? 1 : 0);  // {2, 0} and {3, 1}: higher key first
        std::vector<int32_t> v{r};
        half.allReduce<int32_t>(std::span<int32_t>(v)).wait();
        EXPECT_EQ(v[0], r % 2 == 0 ? 2 : 4);
      }
      if (r != 3) {
        const int excluded[] = {3};
        Communicator survivors = comm.shrink(excluded);
        EXPECT_EQ(survivors.size(), 4);
        EXPECT_EQ(survivors.rank(), r < 3 ? r : r - 1);
        std::vector<int32_t> v{r};
        survivors.allReduce<int32_t>(std::span<int32_t>(v)).wait();
        EXPECT_EQ(v[0], 0 + 1 + 2 + 4);
      }
      ++ok;
    });
  for (auto& t : ranks) t.join();
  EXPECT_EQ(ok.load(), 5);
}

TEST(CppApi, CommunicatorsTakeAConfigAndABadOneThrows) {
  UniqueId id = UniqueId::create();
  weftConfig_t bad = WEFT_CONFIG_INITIALIZER;
  bad.blocking = 7;
  try {
    Communicator comm(1, id, 0, bad);
    ADD_FAILURE() << "a bad config did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), weftInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("config.blocking=7"), std::string::npos) << e.what();
  }
  weftConfig_t config = WEFT_CONFIG_INITIALIZER;
  config.maxChannels = 1;
  Communicator comm(1, id, 0, config);
  std::vector<int32_t> data(10, 5);
  comm.allReduce<int32_t>(std::span<int32_t>(data)).wait();
  EXPECT_EQ(data[9], 5);
}

// config.blocking = 0: the constructor returns while the communicator
// forms; asyncError() says weftInProgress until it has, then it works.
TEST(CppApi, NonBlockingConstructionCompletesInTheBackground) {
  UniqueId id = UniqueId::create();
  std::vector<std::thread> ranks;
  std::atomic<int> ok{0};
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      weftConfig_t config = WEFT_CONFIG_INITIALIZER;
      config.blocking = 0;
      Communicator comm(2, id, r, config);
      weftResult_t state = comm.asyncError();
      for (int i = 0; i < 30000 && state == weftInProgress; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        state = comm.asyncError();
      }
      EXPECT_EQ(state, weftSuccess);
      if (state == weftSuccess && comm.size() == 2) ++ok;
    });
  for (auto& t : ranks) t.join();
  EXPECT_EQ(ok.load(), 2);
}

}  // namespace
}  // namespace weft
