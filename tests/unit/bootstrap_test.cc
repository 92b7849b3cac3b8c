// The bootstrap admits only connections that present the job secret; stray
// connections neither crash nor confuse anyone.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "bootstrap/unique_id.h"
#include "common/launcher.h"
#include "core/socket.h"
#include "weft/weft.h"

namespace weft {
namespace {

TEST(SocketIfname, NcclSyntax) {
  EXPECT_TRUE(interfaceMatches("", "eth0"));
  EXPECT_TRUE(interfaceMatches("eth", "eth0"));
  EXPECT_TRUE(interfaceMatches("ib,eth", "eth1"));
  EXPECT_FALSE(interfaceMatches("ib", "eth0"));
  EXPECT_FALSE(interfaceMatches("^eth", "eth0"));
  EXPECT_TRUE(interfaceMatches("^docker,lo", "eth0"));
  EXPECT_TRUE(interfaceMatches("=eth0", "eth0"));
  EXPECT_FALSE(interfaceMatches("=eth0", "eth01"));
  EXPECT_FALSE(interfaceMatches("^=eth0", "eth0"));
  EXPECT_TRUE(interfaceMatches("^=eth0", "eth01"));
}

TEST(UniqueId, RoundTripsAndRejectsGarbage) {
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  Result<UniqueIdData> data = decodeUniqueId(id);
  ASSERT_TRUE(data.isOk()) << data.status().message();
  EXPECT_NE(data.value().root.port(), 0);
  weftUniqueId other;
  ASSERT_EQ(weftGetUniqueId(&other), weftSuccess);
  EXPECT_NE(memcmp(&id, &other, sizeof(id)), 0) << "two ids share root and secret";
  weftUniqueId garbage;
  memset(&garbage, 0x41, sizeof(garbage));
  weftComm_t comm = nullptr;
  EXPECT_EQ(weftCommInitRank(&comm, 1, garbage, 0), weftInvalidArgument);
  EXPECT_EQ(comm, nullptr);
  EXPECT_NE(std::string(weftGetLastError(nullptr)).find("unique id"), std::string::npos);
}

// Connects to the root and sends bytes (a forged hello, or junk).
void strayConnection(const SocketAddress& root, const void* bytes, size_t length) {
  Result<Socket> sock = Socket::connect(root, defaultDeadline(), nullptr);
  ASSERT_TRUE(sock.isOk());
  if (length > 0) (void)sock.value().sendAll(bytes, length, defaultDeadline(), nullptr);
  // Leave it open a moment, as a scanner would.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

TEST(Bootstrap, StrayAndForgedConnectionsAreDroppedAndTheJobStillForms) {
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  UniqueIdData data = decodeUniqueId(id).value();
  // Before the ranks arrive: junk, a silent connection, and a hello with a wrong secret.
  const char junk[] = "GET / HTTP/1.0\r\n\r\n";
  strayConnection(data.root, junk, sizeof(junk));
  strayConnection(data.root, nullptr, 0);
  struct {
    uint32_t magic, kind;
    uint8_t secret[16];
    int32_t rank, nranks;
    WireAddress listen;
  } forged{kUniqueIdMagic, 1, {0}, 0, 2, {}};
  strayConnection(data.root, &forged, sizeof(forged));

  setenv("WEFT_TIMEOUT", "20", 1);
  int ranksOk = 0;
  std::thread ranks[2];
  std::atomic<int> ok{0};
  for (int r = 0; r < 2; ++r)
    ranks[r] = std::thread([&, r] {
      weftComm_t comm = nullptr;
      if (weftCommInitRank(&comm, 2, id, r) != weftSuccess) return;
      float value = 1.0f + r;
      if (weftAllReduce(&value, &value, 1, weftFloat32, weftSum, comm, nullptr) == weftSuccess &&
          weftCommSynchronize(comm) == weftSuccess && value == 3.0f)
        ++ok;
      weftCommDestroy(comm);
    });
  for (auto& t : ranks) t.join();
  ranksOk = ok.load();
  EXPECT_EQ(ranksOk, 2);
}

TEST(Bootstrap, CommIdFromTheEnvironment) {
  setenv("WEFT_COMM_ID", "127.0.0.1:29517", 1);
  auto failures = test::runRanks(3, test::RankMode::Processes, [](weftComm_t comm, int rank, int n) -> std::string {
    int value = rank + 1;
    if (weftAllReduce(&value, &value, 1, weftInt32, weftSum, comm, nullptr) != weftSuccess ||
        weftCommSynchronize(comm) != weftSuccess)
      return weftGetLastError(comm);
    return value == n * (n + 1) / 2 ? "" : "wrong sum " + std::to_string(value);
  });
  unsetenv("WEFT_COMM_ID");
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

TEST(Bootstrap, SeveralCommunicatorsPerProcessAtOnce) {
  // Two jobs of two thread ranks each, interleaved in the same process.
  weftUniqueId ids[2];
  ASSERT_EQ(weftGetUniqueId(&ids[0]), weftSuccess);
  ASSERT_EQ(weftGetUniqueId(&ids[1]), weftSuccess);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      weftComm_t a = nullptr, b = nullptr;
      if (weftCommInitRank(&a, 2, ids[0], r) != weftSuccess) return;
      if (weftCommInitRank(&b, 2, ids[1], r) != weftSuccess) return;
      std::vector<int64_t> x(1000, r + 1), y(1000, 10 * (r + 1));
      for (int i = 0; i < 20; ++i) {
        weftAllReduce(x.data(), x.data(), x.size(), weftInt64, weftMax, a, nullptr);
        weftAllReduce(y.data(), y.data(), y.size(), weftInt64, weftMax, b, nullptr);
      }
      if (weftCommSynchronize(a) == weftSuccess && weftCommSynchronize(b) == weftSuccess && x[999] == 2 &&
          y[0] == 20)
        ++ok;
      weftCommDestroy(a);
      weftCommDestroy(b);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 2);
}

}  // namespace
}  // namespace weft
