// weftConfig_t and weftCommInitRankConfig: bad configs are refused with the
// field named and no communicator made; a channel cap is honoured; a GPU
// communicator on a machine or build without a GPU fails with CUDA's reason;
// two ranks on one GPU are refused, naming both, unless allowed.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "algorithms/tuner.h"
#include "api/comm.h"
#include "api/config.h"
#include "cuda/cuda_device.h"
#include "core/env.h"
#include "core/fault.h"
#include "weft/weft.h"

namespace weft {
namespace {

TEST(Config, DefaultsAndEveryFieldChecked) {
  Result<CommOptions> none = resolveConfig(nullptr);
  ASSERT_TRUE(none.isOk());
  EXPECT_EQ(none.value().cudaDevice, -1);
  EXPECT_TRUE(none.value().blocking);
  EXPECT_EQ(none.value().maxChannels, 0);

  weftConfig_t config = WEFT_CONFIG_INITIALIZER;
  Result<CommOptions> defaults = resolveConfig(&config);
  ASSERT_TRUE(defaults.isOk()) << defaults.status().message();
  EXPECT_EQ(defaults.value().cudaDevice, -1);

  config.cudaDevice = 3;
  config.blocking = 0;
  config.maxChannels = 4;
  config.allowSharedGpu = 1;
  Result<CommOptions> set = resolveConfig(&config);
  ASSERT_TRUE(set.isOk()) << set.status().message();
  EXPECT_EQ(set.value().cudaDevice, 3);
  EXPECT_FALSE(set.value().blocking);
  EXPECT_EQ(set.value().maxChannels, 4);
  EXPECT_TRUE(set.value().allowSharedGpu);

  struct Case {
    void (*spoil)(weftConfig_t*);
    const char* words;
  };
  const Case cases[] = {
      {[](weftConfig_t* c) { c->magic = 0; }, "WEFT_CONFIG_INITIALIZER"},
      {[](weftConfig_t* c) { c->size = 8; }, "WEFT_CONFIG_INITIALIZER"},
      {[](weftConfig_t* c) { c->cudaDevice = -2; }, "config.cudaDevice=-2"},
      {[](weftConfig_t* c) { c->blocking = 2; }, "config.blocking=2"},
      {[](weftConfig_t* c) { c->maxChannels = 0; }, "config.maxChannels=0"},
      {[](weftConfig_t* c) { c->maxChannels = 17; }, "config.maxChannels=17"},
      {[](weftConfig_t* c) { c->allowSharedGpu = 5; }, "config.allowSharedGpu=5"},
      {[](weftConfig_t* c) { c->timeoutMs = 0; }, "config.timeoutMs=0"},
  };
  for (const Case& c : cases) {
    weftConfig_t bad = WEFT_CONFIG_INITIALIZER;
    c.spoil(&bad);
    Result<CommOptions> refused = resolveConfig(&bad);
    ASSERT_FALSE(refused.isOk()) << c.words;
    EXPECT_EQ(refused.status().code(), weftInvalidArgument);
    EXPECT_NE(refused.status().message().find(c.words), std::string::npos) << refused.status().message();
  }
}

TEST(Config, SharedGpuIsRefusedNamingBothRanksUnlessAllowed) {
  std::vector<std::string> gpus = {"hostA 0000:07:00.0", "hostA 0000:0f:00.0", "hostA 0000:07:00.0"};
  std::vector<int> devices = {0, 1, 0};
  Status refused = checkGpuSharing(gpus, devices, false);
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.code(), weftInvalidUsage);
  EXPECT_NE(refused.message().find("ranks 0 and 2 both use GPU hostA 0000:07:00.0"), std::string::npos)
      << refused.message();
  EXPECT_NE(refused.message().find("WEFT_ALLOW_SHARED_GPU=1"), std::string::npos);
  EXPECT_TRUE(checkGpuSharing(gpus, devices, true).isOk());
  // Same bus id on two hosts is two GPUs; host ranks have none.
  EXPECT_TRUE(checkGpuSharing({"hostA 0000:07:00.0", "hostB 0000:07:00.0", "", ""}, {0, 0, -1, -1}, false).isOk());

  setenv("WEFT_ALLOW_SHARED_GPU", "1", 1);
  EXPECT_TRUE(resolveConfig(nullptr).value().allowSharedGpu);
  weftConfig_t config = WEFT_CONFIG_INITIALIZER;
  config.allowSharedGpu = 0;  // the config wins over the environment
  EXPECT_FALSE(resolveConfig(&config).value().allowSharedGpu);
  unsetenv("WEFT_ALLOW_SHARED_GPU");
}

// Inits n ranks as threads with config; returns each rank's result and comm.
struct Inited {
  std::vector<weftResult_t> results;
  std::vector<weftComm_t> comms;
  std::vector<std::string> errors;
};
Inited initThreads(int n, const weftConfig_t* config) {
  weftUniqueId id;
  EXPECT_EQ(weftGetUniqueId(&id), weftSuccess);
  Inited out;
  out.results.resize(n);
  out.comms.resize(n, nullptr);
  out.errors.resize(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      out.results[r] = weftCommInitRankConfig(&out.comms[r], n, id, r, config);
      out.errors[r] = weftGetLastError(nullptr);
    });
  for (auto& t : threads) t.join();
  return out;
}

TEST(Config, ChannelCapHoldsAgainstWeftNchannels) {
  setenv("WEFT_NCHANNELS", "4", 1);
  weftConfig_t config = WEFT_CONFIG_INITIALIZER;
  config.maxChannels = 2;
  Inited inited = initThreads(3, &config);
  unsetenv("WEFT_NCHANNELS");
  for (int r = 0; r < 3; ++r) ASSERT_EQ(inited.results[r], weftSuccess) << inited.errors[r];
  for (int r = 0; r < 3; ++r)
    EXPECT_EQ(inited.comms[r]->tuner->plan(Collective::AllGather, 1 << 20, -1).value()->nChannels, 2);
  std::vector<std::thread> threads;
  std::vector<std::string> failures(3);
  for (int r = 0; r < 3; ++r)
    threads.emplace_back([&, r] {
      std::vector<int32_t> data(100000, r + 1);
      if (weftAllReduce(data.data(), data.data(), data.size(), weftInt32, weftSum, inited.comms[r], nullptr) !=
              weftSuccess ||
          weftCommSynchronize(inited.comms[r]) != weftSuccess)
        failures[r] = weftGetLastError(inited.comms[r]);
      else
        for (int32_t v : data)
          if (v != 6) {
            failures[r] = "wrong sum " + std::to_string(v);
            break;
          }
      weftCommDestroy(inited.comms[r]);
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) EXPECT_EQ(failures[r], "") << "rank " << r;
}

TEST(Config, TimeoutComesFromTheConfigElseWeftTimeout) {
  std::string before = getenv("WEFT_TIMEOUT") != nullptr ? getenv("WEFT_TIMEOUT") : "";
  unsetenv("WEFT_TIMEOUT");
  EXPECT_EQ(resolveConfig(nullptr).value().timeoutNanos, 300ull * 1000000000ull);
  setenv("WEFT_TIMEOUT", "7", 1);
  EXPECT_EQ(resolveConfig(nullptr).value().timeoutNanos, 7ull * 1000000000ull);
  weftConfig_t config = WEFT_CONFIG_INITIALIZER;
  EXPECT_EQ(resolveConfig(&config).value().timeoutNanos, 7ull * 1000000000ull);
  config.timeoutMs = 1500;
  EXPECT_EQ(resolveConfig(&config).value().timeoutNanos, 1500ull * 1000000ull);
  // A config from the header before timeoutMs ends before the field: what
  // lies past its size is not read.
  config.size = offsetof(weftConfig_t, timeoutMs);
  EXPECT_EQ(resolveConfig(&config).value().timeoutNanos, 7ull * 1000000000ull);
  if (before.empty())
    unsetenv("WEFT_TIMEOUT");
  else
    setenv("WEFT_TIMEOUT", before.c_str(), 1);
}

// A peer that never posts its half: the waiting rank fails with weftTimeout
// after config.timeoutMs, not WEFT_TIMEOUT's five minutes.
TEST(Config, ASilentPeerTimesOutAfterTimeoutMs) {
  weftConfig_t config = WEFT_CONFIG_INITIALIZER;
  config.timeoutMs = 400;
  Inited inited = initThreads(2, &config);
  for (int r = 0; r < 2; ++r) ASSERT_EQ(inited.results[r], weftSuccess) << inited.errors[r];
  std::vector<float> data(1024, 1.0f);
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(weftAllReduce(data.data(), data.data(), data.size(), weftFloat32, weftSum, inited.comms[0], nullptr),
            weftSuccess);
  EXPECT_EQ(weftCommSynchronize(inited.comms[0]), weftTimeout);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(seconds, 0.35);
  EXPECT_LT(seconds, 30.0);
  EXPECT_NE(std::string(weftGetLastError(inited.comms[0])).find("no progress"), std::string::npos)
      << weftGetLastError(inited.comms[0]);
  weftCommAbort(inited.comms[0]);
  weftCommAbort(inited.comms[1]);
}

TEST(Config, ABadConfigMakesNoCommunicator) {
  weftConfig_t config = WEFT_CONFIG_INITIALIZER;
  config.maxChannels = 99;
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  weftComm_t comm = reinterpret_cast<weftComm_t>(0x1);
  EXPECT_EQ(weftCommInitRankConfig(&comm, 1, id, 0, &config), weftInvalidArgument);
  EXPECT_EQ(comm, nullptr);
  EXPECT_NE(std::string(weftGetLastError(nullptr)).find("config.maxChannels=99"), std::string::npos);
  // The same id and a good config still form the communicator.
  config.maxChannels = 1;
  ASSERT_EQ(weftCommInitRankConfig(&comm, 1, id, 0, &config), weftSuccess) << weftGetLastError(nullptr);
  EXPECT_EQ(weftCommDestroy(comm), weftSuccess);
}

// config.blocking = 0: init returns weftInProgress at once; calls get
// weftInProgress until weftCommGetAsyncError stops reporting it; then the
// communicator works.
TEST(Config, NonBlockingInitReturnsAtOnceAndCompletesInTheBackground) {
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      // Rank 1 comes late, so rank 0's init is still waiting when it calls.
      if (r == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
      weftConfig_t config = WEFT_CONFIG_INITIALIZER;
      config.blocking = 0;
      weftComm_t comm = nullptr;
      weftResult_t result = weftCommInitRankConfig(&comm, 2, id, r, &config);
      if (result != weftInProgress || comm == nullptr) {
        errors[r] = "init returned " + std::string(weftGetErrorString(result));
        return;
      }
      double value = r + 1;
      if (r == 0) {
        result = weftAllReduce(&value, &value, 1, weftFloat64, weftSum, comm, nullptr);
        if (result != weftInProgress)
          errors[r] = "a call during init returned " + std::string(weftGetErrorString(result));
      }
      weftResult_t state = weftInProgress;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (state == weftInProgress && std::chrono::steady_clock::now() < deadline) {
        if (weftCommGetAsyncError(comm, &state) != weftSuccess) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      if (state != weftSuccess && errors[r].empty())
        errors[r] = "init ended with " + std::string(weftGetErrorString(state));
      if (errors[r].empty()) {
        result = weftAllReduce(&value, &value, 1, weftFloat64, weftSum, comm, nullptr);
        if (result == weftSuccess) result = weftCommSynchronize(comm);
        if (result != weftSuccess || value != 3.0)
          errors[r] = std::string("all-reduce after init: ") + weftGetLastError(comm);
      }
      if (weftCommDestroy(comm) != weftSuccess && errors[r].empty()) errors[r] = "destroy failed";
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) EXPECT_TRUE(errors[r].empty()) << "rank " << r << ": " << errors[r];
}

TEST(Config, GpuCommunicatorsFormOnAGpuOrSayWhyNot) {
  weftConfig_t config = WEFT_CONFIG_INITIALIZER;
  config.cudaDevice = 0;
  config.allowSharedGpu = 1;
  Result<CudaDeviceInfo> device = queryCudaDevice(0);
  Inited inited = initThreads(2, &config);
  for (int r = 0; r < 2; ++r) {
    if (builtWithCuda() && device.isOk()) {
      // A GPU: two ranks share it (allowSharedGpu).
      EXPECT_EQ(inited.results[r], weftSuccess) << inited.errors[r];
      if (inited.comms[r] != nullptr) EXPECT_EQ(weftCommDestroy(inited.comms[r]), weftSuccess);
      continue;
    }
    EXPECT_EQ(inited.comms[r], nullptr);
    if (!builtWithCuda()) {
      EXPECT_EQ(inited.results[r], weftInvalidUsage);
      EXPECT_NE(inited.errors[r].find("built without CUDA"), std::string::npos) << inited.errors[r];
    } else if (!device.isOk()) {
      // No GPU here: CUDA's own reason, with the rank.
      EXPECT_EQ(inited.results[r], weftUnhandledCudaError);
      EXPECT_NE(inited.errors[r].find("rank " + std::to_string(r) + ": cudaDevice=0: cudaGetDeviceCount failed"),
                std::string::npos)
          << inited.errors[r];
    }
  }
}

}  // namespace
}  // namespace weft

namespace weft {
namespace {

// Integers of the environment variables: a suffix that would overflow is
// refused (it was a signed shift past 63 bits), as is anything after it.
TEST(EnvParse, IntegersWithSuffixesAndWhatIsRefused) {
  int64_t v = 0;
  EXPECT_TRUE(parseEnvInt("4096", &v));
  EXPECT_EQ(v, 4096);
  EXPECT_TRUE(parseEnvInt("0x10k", &v));
  EXPECT_EQ(v, 16 << 10);
  EXPECT_TRUE(parseEnvInt("-2m", &v));
  EXPECT_EQ(v, -(2 << 20));
  EXPECT_TRUE(parseEnvInt("8g", &v));
  EXPECT_EQ(v, int64_t{8} << 30);
  for (const char* bad :
       {"", "k", "12q", "1kk", "9223372036854775807k", "99999999999999999999", "8589934592g", "-8589934592g", "1 "})
    EXPECT_FALSE(parseEnvInt(bad, &v)) << bad;
}

TEST(EnvParse, FaultSpecsAreStrict) {
  FaultSpec spec;
  std::string why;
  ASSERT_TRUE(parseFaultSpec("init.shm@3:stop", &spec, &why)) << why;
  EXPECT_EQ(spec.point, "init.shm");
  EXPECT_EQ(spec.rank, 3);
  EXPECT_TRUE(spec.stop);
  ASSERT_TRUE(parseFaultSpec("shm.named@0", &spec, &why)) << why;
  EXPECT_FALSE(spec.stop);
  for (const char* bad :
       {"init.shm", "@1", "init.shm@", "init.shm@x", "init.shm@-1", "init.shm@1:stpo", "init.shm@99999999999"})
    EXPECT_FALSE(parseFaultSpec(bad, &spec, &why)) << bad;
}

}  // namespace
}  // namespace weft
