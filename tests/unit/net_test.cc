// The net layer without a network card: the IB plugin's device-free logic,
// plugin selection and loading, and the socket plugin's handling of
// connections that do not belong to the job.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/launcher.h"
#include "topology/nic_speed.h"
#include "transports/net/ib/ib_logic.h"
#include "transports/net/net_plugin.h"
#include "weft/weft.h"

namespace weft {
namespace {

TEST(IbLogic, HcaFilterUsesTheSocketSyntaxWithPorts) {
  EXPECT_TRUE(ib::hcaMatches("", "mlx5_0", 1));
  EXPECT_TRUE(ib::hcaMatches("mlx5", "mlx5_3", 1));
  EXPECT_TRUE(ib::hcaMatches("mlx5_0:1,mlx5_1", "mlx5_0", 1));
  EXPECT_FALSE(ib::hcaMatches("mlx5_0:1,mlx5_1", "mlx5_0", 2));
  EXPECT_TRUE(ib::hcaMatches("mlx5_0:1,mlx5_1", "mlx5_1", 2));
  EXPECT_FALSE(ib::hcaMatches("^mlx5_0", "mlx5_0", 1));
  EXPECT_TRUE(ib::hcaMatches("^mlx5_0", "mlx5_1", 1));
  EXPECT_FALSE(ib::hcaMatches("=mlx5_1", "mlx5_10", 1));
  EXPECT_TRUE(ib::hcaMatches("=mlx5_1", "mlx5_1", 1));
}

// A port folder as the kernel shows it, with the given GIDs and types.
std::string fakePort(const std::vector<std::pair<std::string, std::string>>& gids) {
  char pattern[] = "/tmp/weft-ibport-XXXXXX";
  std::string dir = mkdtemp(pattern);
  std::filesystem::create_directories(dir + "/gids");
  std::filesystem::create_directories(dir + "/gid_attrs/types");
  for (size_t i = 0; i < gids.size(); ++i) {
    std::ofstream(dir + "/gids/" + std::to_string(i)) << gids[i].first << "\n";
    if (!gids[i].second.empty()) std::ofstream(dir + "/gid_attrs/types/" + std::to_string(i)) << gids[i].second << "\n";
  }
  return dir;
}

TEST(IbLogic, RoceGidChoicePrefersV2WithAnIpv4MappedAddress) {
  std::string port = fakePort({{"fe80:0000:0000:0000:0202:c9ff:fe00:0001", "IB/RoCE v1"},
                               {"fe80:0000:0000:0000:0202:c9ff:fe00:0001", "RoCE v2"},
                               {"2001:0db8:0000:0000:0000:0000:0000:0005", "RoCE v2"},
                               {"0000:0000:0000:0000:0000:ffff:0a00:0005", "IB/RoCE v1"},
                               {"0000:0000:0000:0000:0000:ffff:0a00:0005", "RoCE v2"}});
  EXPECT_EQ(ib::chooseGidIndex(port, -1), 4);
  EXPECT_EQ(ib::chooseGidIndex(port, 1), 1);  // WEFT_IB_GID_INDEX wins
  std::string v6only = fakePort(
      {{"fe80:0000:0000:0000:0202:c9ff:fe00:0001", "RoCE v2"}, {"2001:0db8:0000:0000:0000:0000:0000:0005", "RoCE v2"}});
  EXPECT_EQ(ib::chooseGidIndex(v6only, -1), 1);
  std::string infiniband = fakePort({{"fe80:0000:0000:0000:0202:c9ff:fe00:0001", ""}});
  EXPECT_EQ(ib::chooseGidIndex(infiniband, -1), 0);
  EXPECT_EQ(ib::chooseGidIndex("/nonexistent", -1), 0);
  for (const std::string& dir : {port, v6only, infiniband}) std::filesystem::remove_all(dir);
}

TEST(IbLogic, PortSpeedFromVerbsCodes) {
  EXPECT_EQ(verbsPortSpeedMbps(32, 2), 100000);   // EDR x4
  EXPECT_EQ(verbsPortSpeedMbps(64, 2), 200000);   // HDR x4
  EXPECT_EQ(verbsPortSpeedMbps(128, 2), 400000);  // NDR x4
  EXPECT_EQ(verbsPortSpeedMbps(1, 1), 2500);      // SDR x1
  EXPECT_EQ(verbsPortSpeedMbps(0, 2), 0);
}

TEST(IbLogic, MessagesSplitOverQueuePairsCoverEveryByteOnce) {
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{4096}, size_t{131136}, size_t{(64u << 20) + 7}}) {
    for (int qps : {1, 2, 3, 4, 16}) {
      std::vector<ib::Chunk> chunks = ib::splitAcrossQps(bytes, qps);
      ASSERT_EQ(chunks.size(), static_cast<size_t>(qps));
      size_t next = 0;
      for (const ib::Chunk& c : chunks) {
        if (c.bytes == 0) continue;
        EXPECT_EQ(c.offset, next);
        EXPECT_EQ(c.offset % 4096, 0u);
        next = c.offset + c.bytes;
      }
      EXPECT_EQ(next, bytes) << bytes << " bytes over " << qps;
    }
  }
}

TEST(IbLogic, RegistrationCacheReusesCoveringRangesAndReleasesOnLastUse) {
  int registered = 0, deregistered = 0;
  std::vector<char> memory(1 << 20);
  {
    ib::MrCache cache([&](void*, size_t) { return reinterpret_cast<void*>(static_cast<uintptr_t>(++registered)); },
                      [&](void*) { ++deregistered; });
    void* whole = cache.acquire(memory.data(), memory.size());
    void* inside = cache.acquire(memory.data() + 4096, 1000);
    EXPECT_EQ(whole, inside);
    EXPECT_EQ(registered, 1);
    std::vector<char> other(8192);
    void* second = cache.acquire(other.data(), other.size());
    EXPECT_NE(second, whole);
    EXPECT_EQ(registered, 2);
    cache.release(inside);
    EXPECT_EQ(deregistered, 0);
    cache.release(whole);
    EXPECT_EQ(deregistered, 1);
    EXPECT_EQ(cache.size(), 1u);
  }
  EXPECT_EQ(deregistered, 2);  // the cache deregisters what is left
  ib::MrCache failing([](void*, size_t) -> void* { return nullptr; }, [](void*) {});
  EXPECT_EQ(failing.acquire(memory.data(), 10), nullptr);
}

// The IB set-up proves the key by challenge-response: a hello answers the
// accepting side's nonce, a reply the connecting side's; the key itself is
// in neither.
TEST(IbLogic, HellosProveTheKeyWithoutCarryingIt) {
  uint8_t key[16] = {1, 2, 3}, other[16] = {1, 2, 4};
  uint8_t challenge[ib::kNonceBytes] = {9, 8, 7}, mine[ib::kNonceBytes] = {5, 5, 5};
  ib::Hello hello{};
  hello.magic = ib::kHelloMagic;
  hello.nQps = 2;
  hello.listenId = 77;
  memcpy(hello.nonce, mine, sizeof(mine));
  ib::helloMac(hello, key, challenge, false, hello.mac);
  EXPECT_EQ(ib::checkHello(hello, key, challenge, false, 77), "");
  std::string raw(reinterpret_cast<const char*>(&hello), sizeof(hello));
  EXPECT_EQ(raw.find(std::string(reinterpret_cast<const char*>(key), 16)), std::string::npos) << "the key travels";
  EXPECT_NE(ib::checkHello(hello, other, challenge, false, 77).find("does not prove the job key"), std::string::npos);
  uint8_t stale[ib::kNonceBytes] = {9, 8, 6};  // a replay answers an old challenge
  EXPECT_NE(ib::checkHello(hello, key, stale, false, 77).find("does not prove"), std::string::npos);
  EXPECT_NE(ib::checkHello(hello, key, challenge, true, 77).find("does not prove"), std::string::npos)
      << "a hello passed as a reply";
  ib::Hello tampered = hello;
  tampered.qps[0].qpn ^= 1;
  EXPECT_NE(ib::checkHello(tampered, key, challenge, false, 77).find("does not prove"), std::string::npos);
  EXPECT_NE(ib::checkHello(hello, key, challenge, false, 78).find("another listener"), std::string::npos);
  hello.nQps = 0;
  ib::helloMac(hello, key, challenge, false, hello.mac);
  EXPECT_NE(ib::checkHello(hello, key, challenge, false, 77).find("queue pair"), std::string::npos);
  hello.magic = 0;
  EXPECT_NE(ib::checkHello(hello, key, challenge, false, 77).find("bad hello"), std::string::npos);
}

// Plugin choice happens once per process: each case runs in a child.
TEST(NetPlugin, WithoutAnHcaTheChoiceFallsBackToSockets) {
  EXPECT_EXIT(
      {
        Result<NetPluginChoice> choice = chooseNetPlugin();
        bool ok = choice.isOk() && std::string(choice.value().plugin->name) == "Socket";
        exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

// In a death-test child: sets one variable, chooses a plugin, prints the
// error (the log is off: what the test matches must be in the error itself)
// and exits 1 on an error.
[[noreturn]] void chooseWith(const char* name, const char* value) {
  setenv(name, value, 1);
  setenv("WEFT_DEBUG", "NONE", 1);
  Result<NetPluginChoice> choice = chooseNetPlugin();
  fprintf(stderr, "%s\n", choice.status().message().c_str());
  exit(choice.isOk() ? 0 : 1);
}

TEST(NetPlugin, ForcingIbWithoutADeviceIsAClearError) {
  EXPECT_EXIT(chooseWith("WEFT_NET", "IB"), ::testing::ExitedWithCode(1), "WEFT_NET=IB");
}

TEST(NetPlugin, AMissingPluginLibraryIsAClearError) {
  EXPECT_EXIT(chooseWith("WEFT_NET_PLUGIN", "/nonexistent/libweft-net-x.so"), ::testing::ExitedWithCode(1),
              "WEFT_NET_PLUGIN=/nonexistent/libweft-net-x.so cannot be loaded");
}

TEST(NetPlugin, AnInterfaceFilterMatchingNothingListsTheCandidates) {
  EXPECT_EXIT(chooseWith("WEFT_SOCKET_IFNAME", "=nosuchif0"), ::testing::ExitedWithCode(1),
              "WEFT_SOCKET_IFNAME='=nosuchif0'; interfaces that are up: .*lo");
}

TEST(NetPlugin, AThirdPartyPluginCarriesTheTraffic) {
  setenv("WEFT_NET_PLUGIN", WEFT_TEST_NET_PLUGIN, 1);
  auto failures = test::runRanks(2, test::RankMode::Nodes1, [](weftComm_t comm, int rank, int) -> std::string {
    std::vector<float> data(100000, static_cast<float>(rank + 1));
    if (weftAllReduce(data.data(), data.data(), data.size(), weftFloat32, weftSum, comm, nullptr) != weftSuccess ||
        weftCommSynchronize(comm) != weftSuccess)
      return weftGetLastError(comm);
    if (data[99999] != 3.0f) return "wrong sum";
    void* library = dlopen(WEFT_TEST_NET_PLUGIN, RTLD_NOW | RTLD_NOLOAD);
    if (library == nullptr) return "the plugin library was not loaded";
    auto* sends = static_cast<std::atomic<long>*>(dlsym(library, "weftTestPluginSends"));
    if (sends == nullptr || sends->load() == 0) return "the plugin carried no message";
    return "";
  });
  unsetenv("WEFT_NET_PLUGIN");
  EXPECT_TRUE(failures.empty()) << test::joinFailures(failures);
}

// Connects to the listener and accepts, both non-blocking, until both ends exist.
void connectPair(const weftNet_v1_t* plugin, const weftNetKey_t& key, char* handle, void* listenComm, void** sendComm,
                 void** recvComm) {
  for (int i = 0; i < 20000 && (*sendComm == nullptr || *recvComm == nullptr); ++i) {
    if (*sendComm == nullptr) ASSERT_EQ(plugin->connect(0, &key, handle, sendComm), weftSuccess);
    if (*recvComm == nullptr) ASSERT_EQ(plugin->accept(listenComm, recvComm), weftSuccess);
    usleep(100);
  }
  ASSERT_NE(*sendComm, nullptr);
  ASSERT_NE(*recvComm, nullptr);
}

// The socket plugin, driven directly: a connection with the wrong key, one
// that sends junk and one that stays silent are dropped; the real one is
// still accepted and carries a message.
TEST(SocketPlugin, ConnectionsWithoutTheJobKeyAreDroppedAndTheJobGoesOn) {
  const weftNet_v1_t* plugin = socketNetPlugin();
  ASSERT_EQ(plugin->init(netPluginLog), weftSuccess);
  int ndev = 0;
  ASSERT_EQ(plugin->devices(&ndev), weftSuccess);
  ASSERT_GE(ndev, 1);
  weftNetKey_t key{}, wrong{};
  for (int i = 0; i < WEFT_NET_KEY_BYTES; ++i) {
    key.bytes[i] = static_cast<uint8_t>(i + 1);
    wrong.bytes[i] = static_cast<uint8_t>(i + 2);
  }
  char handle[WEFT_NET_HANDLE_BYTES], forgedHandle[WEFT_NET_HANDLE_BYTES];
  void* listenComm = nullptr;
  ASSERT_EQ(plugin->listen(0, &key, handle, &listenComm), weftSuccess);
  // A connection presenting another key reaches the listener first.
  memcpy(forgedHandle, handle, sizeof(handle));
  // Its streams get their challenges from accept(), which refuses their answers.
  void* forged = nullptr;
  void* none = nullptr;
  for (int i = 0; i < 20000 && forged == nullptr; ++i) {
    ASSERT_EQ(plugin->connect(0, &wrong, forgedHandle, &forged), weftSuccess);
    ASSERT_EQ(plugin->accept(listenComm, &none), weftSuccess);
    ASSERT_EQ(none, nullptr) << "a connection with the wrong key was accepted";
    usleep(100);
  }
  ASSERT_NE(forged, nullptr);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(plugin->accept(listenComm, &none), weftSuccess);
    ASSERT_EQ(none, nullptr) << "a connection with the wrong key was accepted";
    usleep(1000);
  }
  plugin->closeSend(forged);
  void* sendComm = nullptr;
  void* recvComm = nullptr;
  ASSERT_NO_FATAL_FAILURE(connectPair(plugin, key, handle, listenComm, &sendComm, &recvComm));
  // The accepted connection is the real one: a message crosses it.
  char out[100], in[200];
  for (int i = 0; i < 100; ++i) out[i] = static_cast<char>(i * 3);
  void *sreq = nullptr, *rreq = nullptr;
  ASSERT_EQ(plugin->irecv(recvComm, in, sizeof(in), 0, nullptr, &rreq), weftSuccess);
  ASSERT_EQ(plugin->isend(sendComm, out, sizeof(out), 0, nullptr, &sreq), weftSuccess);
  int sdone = 0, rdone = 0;
  size_t size = 0;
  for (int i = 0; i < 100000 && !(sdone && rdone); ++i) {
    if (!sdone) ASSERT_EQ(plugin->test(sreq, &sdone, nullptr), weftSuccess);
    if (!rdone) ASSERT_EQ(plugin->test(rreq, &rdone, &size), weftSuccess);
  }
  ASSERT_TRUE(sdone && rdone);
  EXPECT_EQ(size, sizeof(out));
  EXPECT_EQ(memcmp(in, out, sizeof(out)), 0);
  // The peer going away is an error on the next receive, never data.
  ASSERT_EQ(plugin->irecv(recvComm, in, sizeof(in), 0, nullptr, &rreq), weftSuccess);
  plugin->closeSend(sendComm);
  weftResult_t rc = weftSuccess;
  rdone = 0;
  for (int i = 0; i < 100000 && rc == weftSuccess && !rdone; ++i) rc = plugin->test(rreq, &rdone, &size);
  EXPECT_EQ(rdone, 0);
  EXPECT_EQ(rc, weftSystemError);
  char reason[256];
  plugin->errorString(recvComm, reason, sizeof(reason));
  EXPECT_NE(std::string(reason).find("closed by the peer"), std::string::npos) << reason;
  plugin->closeRecv(recvComm);
  plugin->closeListen(listenComm);
}

// Sending to a peer that has gone is an error, not a SIGPIPE that kills the
// sender (small messages leave in one system call with their size record).
TEST(SocketPlugin, SendingToAClosedPeerIsAnErrorNotASignal) {
  signal(SIGPIPE, SIG_DFL);  // what a program that never touched SIGPIPE has
  const weftNet_v1_t* plugin = socketNetPlugin();
  ASSERT_EQ(plugin->init(netPluginLog), weftSuccess);
  weftNetKey_t key{};
  for (int i = 0; i < WEFT_NET_KEY_BYTES; ++i) key.bytes[i] = static_cast<uint8_t>(7 * i + 1);
  char handle[WEFT_NET_HANDLE_BYTES];
  void* listenComm = nullptr;
  ASSERT_EQ(plugin->listen(0, &key, handle, &listenComm), weftSuccess);
  void* sendComm = nullptr;
  void* recvComm = nullptr;
  ASSERT_NO_FATAL_FAILURE(connectPair(plugin, key, handle, listenComm, &sendComm, &recvComm));
  plugin->closeRecv(recvComm);
  plugin->closeListen(listenComm);
  char out[64] = {1};
  weftResult_t rc = weftSuccess;
  for (int i = 0; i < 2000 && rc == weftSuccess; ++i) {
    void* request = nullptr;
    rc = plugin->isend(sendComm, out, sizeof(out), 0, nullptr, &request);
    int done = 0;
    for (int j = 0; j < 1000 && rc == weftSuccess && !done; ++j) rc = plugin->test(request, &done, nullptr);
    usleep(200);
  }
  EXPECT_NE(rc, weftSuccess) << "2000 sends to a closed peer all succeeded";
  plugin->closeSend(sendComm);
}

}  // namespace
}  // namespace weft
