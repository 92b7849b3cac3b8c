// The bootstrap admits only connections that present the job secret; stray
// connections neither crash nor confuse anyone.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include <signal.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iostream>

#include "bootstrap/handshake.h"
#include "bootstrap/unique_id.h"
#include "common/launcher.h"
#include "core/clock.h"
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

// A signal that interrupts a connect (a profiler's timer, SIGCHLD, a fuzzer's
// alarm) does not fail it: the connection settles and is used. Found by the
// hello fuzzer, whose alarm interrupted a connect to a live listener.
TEST(Socket, ConnectInterruptedBySignalsStillConnects) {
  SocketAddress bound;
  Result<SocketAddress> any = parseSocketAddress("127.0.0.1:0");
  ASSERT_TRUE(any.isOk());
  Result<Socket> listener = Socket::listen(any.value(), &bound);
  ASSERT_TRUE(listener.isOk());
  std::atomic<bool> done{false};
  std::thread acceptor([&] {
    while (!done) {
      Result<Socket> sock = listener.value().accept(monotonicNanos() + 10000000, nullptr);
      (void)sock;
    }
  });
  struct sigaction action {};
  action.sa_handler = [](int) {};
  action.sa_flags = 0;  // no SA_RESTART: connect returns EINTR
  struct sigaction old {};
  sigaction(SIGALRM, &action, &old);
  itimerval every{{0, 20}, {0, 20}};
  setitimer(ITIMER_REAL, &every, nullptr);
  int failed = 0;
  std::string first;
  for (int i = 0; i < 3000; ++i) {
    Result<Socket> sock = Socket::connect(bound, monotonicNanos() + 5000000000ull, nullptr);
    if (!sock.isOk() && failed++ == 0) first = sock.status().message();
  }
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  sigaction(SIGALRM, &old, nullptr);
  done = true;
  acceptor.join();
  EXPECT_EQ(failed, 0) << first;
}

// A rank that never comes is named by the root to every rank that did,
// within WEFT_TIMEOUT and a little.
TEST(Bootstrap, RanksThatNeverArriveAreNamedByTheRoot) {
  setenv("WEFT_TIMEOUT", "2", 1);
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  std::vector<std::string> errors(3);
  std::vector<double> seconds(3);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 3; ++r)
    ranks.emplace_back([&, r] {
      auto start = std::chrono::steady_clock::now();
      weftComm_t comm = nullptr;
      weftResult_t rc = weftCommInitRank(&comm, 5, id, r);  // ranks 3 and 4 never start
      seconds[r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      errors[r] =
          rc == weftSuccess ? "succeeded" : std::string(weftGetErrorString(rc)) + ": " + weftGetLastError(nullptr);
      if (comm != nullptr) weftCommDestroy(comm);
    });
  for (auto& t : ranks) t.join();
  setenv("WEFT_TIMEOUT", "60", 1);
  for (int r = 0; r < 3; ++r) {
    EXPECT_NE(errors[r].find("ranks 3, 4 of the job's 5 never arrived"), std::string::npos) << errors[r];
    EXPECT_NE(errors[r].find("timeout"), std::string::npos) << errors[r];
    EXPECT_LT(seconds[r], 2 + 2.5) << errors[r];
  }
  // Many missing: the first eight named, the rest counted, the text whole.
  setenv("WEFT_TIMEOUT", "1", 1);
  weftUniqueId lonely;
  ASSERT_EQ(weftGetUniqueId(&lonely), weftSuccess);
  weftComm_t comm = nullptr;
  EXPECT_EQ(weftCommInitRank(&comm, 40, lonely, 0), weftTimeout);
  setenv("WEFT_TIMEOUT", "60", 1);
  std::string text = weftGetLastError(nullptr);
  EXPECT_NE(text.find("ranks 1, 2, 3, 4, 5, 6, 7, 8 and 31 more of the job's 40 never arrived"), std::string::npos)
      << text;
  EXPECT_NE(text.find("WEFT_COMM_ID)"), std::string::npos) << "the root's message was cut: " << text;
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
  Hello forged{kUniqueIdMagic, 1, 0, 2, {}, {0}, {0}};  // no valid MAC
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

// Holds stray connections to the root open: silent ones, junk, answers
// under a wrong secret, and replays (an answer proven with the right secret
// for another connection's challenge, as an eavesdropper would have it).
class Strays {
 public:
  Strays(const SocketAddress& root, const JobSecret& secret) : root_(root), secret_(secret) {}
  // Opens count strays; with untilRefused, stops quietly once the root has
  // gone (the job formed) and returns how many it opened.
  int open(int count, bool untilRefused = false) {
    for (int i = 0; i < count; ++i) {
      uint64_t deadline = untilRefused ? monotonicNanos() + 100000000ull : defaultDeadline();
      Result<Socket> sock = Socket::connect(root_, deadline, nullptr);
      if (!sock.isOk()) {
        EXPECT_TRUE(untilRefused) << sock.status().message();
        return i;
      }
      Socket s = sock.take();
      Hello hello{};
      hello.kind = static_cast<uint32_t>(HelloKind::Root);
      hello.rank = 0;
      hello.nranks = 4;
      Challenge challenge{};
      switch (i % 4) {
        case 0: break;  // silent
        case 1: {
          const char junk[] =
              "GET / HTTP/1.0\r\n\r\n........................................................................";
          (void)s.sendAll(junk, sizeof(junk), defaultDeadline(), nullptr);
          break;
        }
        case 2: {
          JobSecret wrong = secret_;
          wrong.bytes[0] ^= 1;
          (void)answerChallenge(s, wrong, &hello, &challenge, defaultDeadline(), nullptr);
          break;
        }
        case 3: {
          // Proven for the previous stray's challenge, sent on this one.
          if (previous_.valid()) {
            Challenge mine{};
            (void)s.recvAll(&mine, sizeof(mine), defaultDeadline(), nullptr);
            (void)s.sendAll(&replay_, sizeof(replay_), defaultDeadline(), nullptr);
          }
          break;
        }
      }
      if (i % 4 == 2) {
        // Keep a proven answer for the next replay.
        Hello proven = hello;
        proven.nonce[0] ^= 0;  // same claim
        helloMac(secret_, challenge, proven, proven.mac);
        replay_ = proven;
        previous_ = Socket(::dup(s.fd()));
      }
      held_.push_back(std::move(s));
    }
    return count;
  }

 private:
  SocketAddress root_;
  JobSecret secret_;
  Hello replay_{};
  Socket previous_;
  std::vector<Socket> held_;
};

TEST(Bootstrap, AThousandStrayConnectionsDoNotDelayTheJob) {
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  UniqueIdData data = decodeUniqueId(id).value();
  setenv("WEFT_TIMEOUT", "20", 1);
  Strays strays(data.root, data.secret);
  ASSERT_EQ(strays.open(1000), 1000);  // before the ranks arrive
  std::atomic<int> ok{0};
  std::atomic<double> slowest{0};
  std::vector<std::thread> ranks;
  for (int r = 0; r < 4; ++r)
    ranks.emplace_back([&, r] {
      auto start = std::chrono::steady_clock::now();
      weftComm_t comm = nullptr;
      if (weftCommInitRank(&comm, 4, id, r) != weftSuccess) {
        ADD_FAILURE() << weftGetLastError(nullptr);
        return;
      }
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      for (double seen = slowest.load(); seconds > seen && !slowest.compare_exchange_weak(seen, seconds);) {
      }
      int value = r + 1;
      if (weftAllReduce(&value, &value, 1, weftInt32, weftSum, comm, nullptr) == weftSuccess &&
          weftCommSynchronize(comm) == weftSuccess && value == 10)
        ++ok;
      weftCommDestroy(comm);
    });
  int during = strays.open(1000, true);  // and more while they form, until the root is done
  for (auto& t : ranks) t.join();
  std::cout << "strays: 1000 before the ranks, " << during << " while they formed; slowest rank joined in "
            << slowest.load() << " s\n";
  setenv("WEFT_TIMEOUT", "60", 1);
  EXPECT_EQ(ok.load(), 4);
  // Formed within a second of the ranks' arrival, strays and all.
  EXPECT_LT(slowest.load(), 1.0) << "the slowest rank took " << slowest.load() << " s to join";
}

TEST(Bootstrap, ASecondClaimOfARankIsRefusedAndTheJobStillForms) {
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  std::atomic<int> ok{0};
  auto rank = [&](int r) {
    weftComm_t comm = nullptr;
    if (weftCommInitRank(&comm, 2, id, r) != weftSuccess) return;
    int value = r + 1;
    if (weftAllReduce(&value, &value, 1, weftInt32, weftSum, comm, nullptr) == weftSuccess &&
        weftCommSynchronize(comm) == weftSuccess && value == 3)
      ++ok;
    weftCommDestroy(comm);
  };
  std::thread first(rank, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  weftComm_t duplicate = nullptr;
  EXPECT_EQ(weftCommInitRank(&duplicate, 2, id, 0), weftInvalidUsage);
  std::string text = weftGetLastError(nullptr);
  EXPECT_NE(text.find("rank 0 is claimed a second time"), std::string::npos) << text;
  std::thread second(rank, 1);
  first.join();
  second.join();
  EXPECT_EQ(ok.load(), 2);
}

TEST(Handshake, AnswersProveTheSecretAndBindTheChallenge) {
  JobSecret secret;
  ASSERT_TRUE(randomSecret(&secret).isOk());
  Challenge a{kUniqueIdMagic, 1, {1}}, b{kUniqueIdMagic, 1, {2}};
  Hello hello{};
  hello.rank = 3;
  uint8_t macA[kMacBytes], macB[kMacBytes], macOtherRank[kMacBytes];
  helloMac(secret, a, hello, macA);
  helloMac(secret, b, hello, macB);
  Hello claimsMore = hello;
  claimsMore.rank = 4;
  helloMac(secret, a, claimsMore, macOtherRank);
  EXPECT_NE(memcmp(macA, macB, kMacBytes), 0) << "the MAC does not depend on the challenge";
  EXPECT_NE(memcmp(macA, macOtherRank, kMacBytes), 0) << "the MAC does not cover the claimed rank";
  // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?").
  uint8_t out[kMacBytes];
  const char* text = "what do ya want for nothing?";
  hmacSha256(reinterpret_cast<const uint8_t*>("Jefe"), 4, text, strlen(text), out);
  const uint8_t expected[] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
                              0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
                              0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
  EXPECT_EQ(memcmp(out, expected, kMacBytes), 0);
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
      if (weftCommSynchronize(a) == weftSuccess && weftCommSynchronize(b) == weftSuccess && x[999] == 2 && y[0] == 20)
        ++ok;
      weftCommDestroy(a);
      weftCommDestroy(b);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 2);
}

}  // namespace
}  // namespace weft
