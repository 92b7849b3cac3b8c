// The device executor on the emulated device (WEFT_DEVICE=emulated): the
// device code's element kernels against the host's, bit for bit; every
// collective x type x op x in/out-of-place x count on 1-5 thread ranks
// sharing emulated device 0, by the LL and the simple protocol and every
// algorithm forced; groups of many messages in one launch; buffers that are
// not device memory; a shared device refused by default; mismatched calls
// and a silent peer.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "algorithms/registry.h"
#include "api/comm.h"
#include "common/collective_cases.h"
#include "common/launcher.h"
#include "device/device_executor.h"
#include "device/elements.h"
#include "exec/reduce.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

void* deviceAllocate(size_t bytes) {
  void* p = nullptr;
  return weftMemAlloc(&p, bytes) == weftSuccess ? p : nullptr;
}
void deviceRelease(void* p) { weftMemFree(p); }
const BufferSpace kDeviceSpace{deviceAllocate, deviceRelease};

// Sets variables for a test and puts the old values back.
class Env {
 public:
  void set(const char* name, const char* value) {
    const char* old = getenv(name);
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
    setenv(name, value, 1);
  }
  ~Env() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second)
        setenv(it->first.c_str(), it->second->c_str(), 1);
      else
        unsetenv(it->first.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

class EmulatedDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.set("WEFT_DEVICE", "emulated");
    setBufferSpace(&kDeviceSpace);
  }
  void TearDown() override { setBufferSpace(nullptr); }
  Env env_;
};

// --- element kernels -------------------------------------------------------

// Bits that cover every class of value: zeros, subnormals, normals,
// infinities, NaNs, for every width.
std::vector<char> randomBits(size_t bytes, unsigned seed) {
  std::mt19937 gen(seed);
  std::vector<char> out(bytes);
  for (char& b : out) b = static_cast<char>(gen());
  return out;
}

// The same bits, or (floating types) both NaN: the host's SIMD kernels and
// the device code may quiet a NaN's payload differently.
bool sameOrBothNaN(int type, const char* p, const char* q) {
  size_t tb = weftTypeSize(static_cast<weftDataType_t>(type));
  if (memcmp(p, q, tb) == 0) return true;
  auto asFloat = [&](const char* v) -> double {
    switch (type) {
      case weftFloat16: return halfToFloat(*reinterpret_cast<const uint16_t*>(v));
      case weftBfloat16: return bf16ToFloat(*reinterpret_cast<const uint16_t*>(v));
      case weftFloat8e4m3: return e4m3ToFloat(*reinterpret_cast<const uint8_t*>(v));
      case weftFloat8e5m2: return e5m2ToFloat(*reinterpret_cast<const uint8_t*>(v));
      case weftFloat32: return *reinterpret_cast<const float*>(v);
      case weftFloat64: return *reinterpret_cast<const double*>(v);
      default: return 0;  // integers: bits only
    }
  };
  bool floating = type >= weftFloat16;  // weftFloat16 and every type after it
  return floating && std::isnan(asFloat(p)) && std::isnan(asFloat(q));
}

TEST(DeviceElements, ReduceLikeTheHostForEveryTypeAndOp) {
  for (int type = 0; type < weftNumTypes; ++type)
    for (int op = 0; op < weftNumOps; ++op) {
      size_t tb = weftTypeSize(static_cast<weftDataType_t>(type));
      size_t n = 1021;  // a tail after the 16-byte packs
      std::vector<char> a = randomBits(n * tb, 1 + type * 7 + op), b = randomBits(n * tb, 99 + type * 5 + op);
      std::vector<char> host(n * tb), dev(n * tb);
      reduceFunction(static_cast<weftDataType_t>(type), static_cast<weftRedOp_t>(op))(host.data(), a.data(), b.data(),
                                                                                      n);
      device::reduceSlice(dev.data(), a.data(), b.data(), n, type, op);
      // Misaligned too (the element loop alone).
      std::vector<char> devOff(n * tb + 16);
      std::vector<char> aOff(n * tb + 16), bOff(n * tb + 16);
      memcpy(aOff.data() + tb, a.data(), n * tb);
      memcpy(bOff.data() + tb, b.data(), n * tb);
      device::reduceSlice(devOff.data() + tb, aOff.data() + tb, bOff.data() + tb, n, type, op);
      for (size_t i = 0; i < n; ++i) {
        bool same = sameOrBothNaN(type, host.data() + i * tb, dev.data() + i * tb) &&
                    sameOrBothNaN(type, host.data() + i * tb, devOff.data() + tb + i * tb);
        ASSERT_TRUE(same) << "type " << type << " op " << op << " element " << i << ": a " << std::hex
                          << +static_cast<uint8_t>(a[i * tb]) << " b " << +static_cast<uint8_t>(b[i * tb]) << " host "
                          << +static_cast<uint8_t>(host[i * tb]) << " device " << +static_cast<uint8_t>(dev[i * tb]);
      }
    }
}

TEST(DeviceElements, DivideAndScaleLikeTheHost) {
  for (int type = 0; type < weftNumTypes; ++type) {
    size_t tb = weftTypeSize(static_cast<weftDataType_t>(type));
    size_t n = 333;
    std::vector<char> a = randomBits(n * tb, 7 + type);
    std::vector<char> host = a, dev(n * tb);
    divideFunction(static_cast<weftDataType_t>(type))(host.data(), n, 3);
    device::divideSlice(dev.data(), a.data(), n, type, 3);
    std::vector<char> scalarBits = randomBits(8, 3 + type);
    uint64_t scalar = 0;
    memcpy(&scalar, scalarBits.data(), tb);
    std::vector<char> hostScaled(n * tb), devScaled(n * tb);
    scaleFunction(static_cast<weftDataType_t>(type))(hostScaled.data(), a.data(), n, &scalar);
    device::multiplySlice(devScaled.data(), a.data(), n, type, scalar);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_TRUE(sameOrBothNaN(type, host.data() + i * tb, dev.data() + i * tb))
          << "divide, type " << type << " element " << i;
      ASSERT_TRUE(sameOrBothNaN(type, hostScaled.data() + i * tb, devScaled.data() + i * tb))
          << "scale, type " << type << " element " << i;
    }
  }
}

// --- collectives -----------------------------------------------------------

struct Shape {
  int nranks;
  const char* algo;      // WEFT_ALGO ("" for the tuner's)
  const char* channels;  // WEFT_NCHANNELS
  const char* buffsize;  // WEFT_BUFFSIZE (the simple protocol's slot)
  const char* protocol;  // WEFT_DEVICE_PROTOCOL ("" by size)
};

class DeviceCollectives : public ::testing::TestWithParam<Shape> {};

TEST_P(DeviceCollectives, EveryCollectiveTypeOpAndCountIsExact) {
  const Shape& shape = GetParam();
  Env env;
  env.set("WEFT_DEVICE", "emulated");
  env.set("WEFT_ALGO", shape.algo);
  env.set("WEFT_NCHANNELS", shape.channels);
  env.set("WEFT_BUFFSIZE", shape.buffsize);
  env.set("WEFT_DEVICE_PROTOCOL", shape.protocol);
  setBufferSpace(&kDeviceSpace);
  bool ll = std::string(shape.protocol) == "ll";
  // LL moves 4 bytes of data per 8-byte word: its shapes stop at 64 Ki elements.
  std::vector<Case> cases = allCases(shape.nranks, caseCounts(ll ? 65539 : kLargestCount));
  auto failures = runRanks(shape.nranks, RankMode::DeviceThreads,
                           [&](weftComm_t comm, int rank, int n) { return runCases(comm, rank, n, cases); });
  setBufferSpace(nullptr);
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

std::string shapeName(const ::testing::TestParamInfo<Shape>& info) {
  const Shape& s = info.param;
  std::string name = std::to_string(s.nranks) + "ranks";
  if (s.algo[0]) name += std::string("_") + s.algo;
  if (std::string(s.channels) != "0") name += std::string("_ch") + s.channels;
  if (std::string(s.buffsize) != "131072") name += std::string("_slot") + s.buffsize;
  if (s.protocol[0]) name += std::string("_") + s.protocol;
  return name;
}

std::vector<Shape> shapes() {
  std::vector<Shape> list = {{1, "", "0", "131072", ""},    {2, "", "0", "131072", ""}, {3, "", "0", "131072", ""},
                             {4, "", "0", "131072", ""},    {5, "", "0", "131072", ""}, {3, "", "2", "4096", "ll"},
                             {4, "", "2", "4096", "simple"}};
  for (const AlgorithmEntry& entry : algorithmRegistry()) list.push_back(Shape{3, entry.name, "2", "4096", ""});
  return list;
}

INSTANTIATE_TEST_SUITE_P(Emulated, DeviceCollectives, ::testing::ValuesIn(shapes()), shapeName);

// --- groups, buffers, sharing, failures --------------------------------------

// A group of sends and receives to every peer, each larger than a FIFO
// holds, posted in an order that deadlocks unless the directions run apart,
// with an all-reduce in the same group: one launch.
TEST_F(EmulatedDevice, GroupOfManyMessagesAndACollectiveRunsInOneLaunch) {
  env_.set("WEFT_BUFFSIZE", "4096");
  const int n = 4;
  const size_t count = 50000;  // 200 KB per message: many slots of 4 KiB
  auto failures = runRanks(n, RankMode::DeviceThreads, [&](weftComm_t comm, int rank, int nranks) -> std::string {
    std::vector<int32_t*> out(nranks), in(nranks);
    for (int p = 0; p < nranks; ++p) {
      out[p] = static_cast<int32_t*>(deviceAllocate(count * 4));
      in[p] = static_cast<int32_t*>(deviceAllocate(count * 4));
      for (size_t i = 0; i < count; ++i) out[p][i] = static_cast<int32_t>(rank * 1000003 + p * 7919 + i);
    }
    auto* sum = static_cast<int32_t*>(deviceAllocate(count * 4));
    for (size_t i = 0; i < count; ++i) sum[i] = static_cast<int32_t>(rank + i);
    weftGroupStart();
    for (int p = 0; p < nranks; ++p) weftSend(out[p], count, weftInt32, p, comm, nullptr);
    weftAllReduce(sum, sum, count, weftInt32, weftSum, comm, nullptr);
    for (int p = nranks - 1; p >= 0; --p) weftRecv(in[p], count, weftInt32, p, comm, nullptr);
    weftResult_t result = weftGroupEnd();
    if (result == weftSuccess) result = weftCommSynchronize(comm);
    std::string error;
    if (result != weftSuccess) error = std::string(weftGetErrorString(result)) + ": " + weftGetLastError(comm);
    for (int p = 0; p < nranks && error.empty(); ++p)
      for (size_t i = 0; i < count; ++i)
        if (in[p][i] != static_cast<int32_t>(p * 1000003 + rank * 7919 + i)) {
          error = "message from rank " + std::to_string(p) + " wrong at " + std::to_string(i);
          break;
        }
    for (size_t i = 0; i < count && error.empty(); ++i)
      if (sum[i] != static_cast<int32_t>(nranks * (nranks - 1) / 2 + nranks * i))
        error = "sum wrong at " + std::to_string(i);
    for (int p = 0; p < nranks; ++p) {
      deviceRelease(out[p]);
      deviceRelease(in[p]);
    }
    deviceRelease(sum);
    return error;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_F(EmulatedDevice, HostBuffersAreRefusedAndTheCommunicatorStaysUsable) {
  auto failures = runRanks(2, RankMode::DeviceThreads, [&](weftComm_t comm, int rank, int) -> std::string {
    std::vector<float> host(64, 1.0f);
    weftResult_t result = weftAllReduce(host.data(), host.data(), 64, weftFloat32, weftSum, comm, nullptr);
    if (result != weftInvalidArgument) return "a host buffer was accepted";
    std::string message = weftGetLastError(comm);
    if (message.find("not memory of emulated device 0") == std::string::npos) return "unclear refusal: " + message;
    auto* dev = static_cast<float*>(deviceAllocate(64 * 4));
    // Past the end of its allocation.
    result = weftAllReduce(dev, dev, 65, weftFloat32, weftSum, comm, nullptr);
    if (result != weftInvalidArgument || std::string(weftGetLastError(comm)).find("past the end") == std::string::npos)
      return "an overlong buffer was accepted: " + std::string(weftGetLastError(comm));
    // A stream that is not the device's.
    int notAStream = 0;
    result = weftAllReduce(dev, dev, 64, weftFloat32, weftSum, comm, &notAStream);
    if (result != weftInvalidArgument) return "a foreign stream was accepted";
    for (int i = 0; i < 64; ++i) dev[i] = static_cast<float>(rank + 1);
    result = weftAllReduce(dev, dev, 64, weftFloat32, weftSum, comm, nullptr);
    if (result == weftSuccess) result = weftCommSynchronize(comm);
    std::string error;
    if (result != weftSuccess) error = std::string("after the refusals: ") + weftGetLastError(comm);
    for (int i = 0; i < 64 && error.empty(); ++i)
      if (dev[i] != 3.0f) error = "wrong sum after the refusals";
    deviceRelease(dev);
    return error;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_F(EmulatedDevice, TwoRanksOnOneDeviceAreRefusedUnlessAllowed) {
  weftUniqueId id;
  ASSERT_EQ(weftGetUniqueId(&id), weftSuccess);
  std::vector<std::string> messages(2);
  std::vector<weftResult_t> results(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      weftConfig_t config = WEFT_CONFIG_INITIALIZER;
      config.cudaDevice = 0;
      config.allowSharedGpu = 0;
      weftComm_t comm = nullptr;
      results[r] = weftCommInitRankConfig(&comm, 2, id, r, &config);
      messages[r] = weftGetLastError(nullptr);
      if (results[r] == weftSuccess) weftCommDestroy(comm);
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(results[r], weftInvalidUsage) << messages[r];
    EXPECT_NE(messages[r].find("ranks 0 and 1 both use GPU"), std::string::npos) << messages[r];
  }
}

TEST_F(EmulatedDevice, MismatchedCallsFailNamingBoth) {
  auto failures = runRanks(2, RankMode::DeviceThreads, [&](weftComm_t comm, int rank, int) -> std::string {
    auto* dev = static_cast<float*>(deviceAllocate(1024 * 4));
    size_t count = rank == 0 ? 1024 : 512;
    weftResult_t result = weftAllReduce(dev, dev, count, weftFloat32, weftSum, comm, nullptr);
    if (result == weftSuccess) result = weftCommSynchronize(comm);
    std::string message = weftGetLastError(comm);
    deviceRelease(dev);
    if (result != weftInvalidUsage) return "expected weftInvalidUsage, got " + std::string(weftGetErrorString(result));
    if (message.find("mismatched calls") == std::string::npos || message.find("count=1024") == std::string::npos ||
        message.find("count=512") == std::string::npos)
      return "unclear mismatch: " + message;
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST_F(EmulatedDevice, ASilentPeerMakesTheOthersTimeOut) {
  env_.set("WEFT_TIMEOUT", "3");
  auto start = std::chrono::steady_clock::now();
  auto failures = runRanks(3, RankMode::DeviceThreads, [&](weftComm_t comm, int rank, int) -> std::string {
    auto* dev = static_cast<float*>(deviceAllocate(4096 * 4));
    std::string error;
    if (rank == 2)
      std::this_thread::sleep_for(std::chrono::seconds(8));  // never calls, and stays until the others gave up
    if (rank != 2) {
      weftResult_t result = weftAllReduce(dev, dev, 4096, weftFloat32, weftSum, comm, nullptr);
      if (result == weftSuccess) result = weftCommSynchronize(comm);
      std::string message = weftGetLastError(comm);
      if (result != weftTimeout && result != weftRemoteError)
        error = "expected a timeout, got " + std::string(weftGetErrorString(result)) + ": " + message;
      else if (message.find("timed out") == std::string::npos)
        error = "unclear timeout: " + message;
    }
    deviceRelease(dev);
    return error;
  });
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
  EXPECT_LT(seconds, 30.0);
}

TEST_F(EmulatedDevice, PreMulSumScalesOnTheDevice) {
  auto failures = runRanks(3, RankMode::DeviceThreads, [&](weftComm_t comm, int rank, int nranks) -> std::string {
    const size_t count = 70001;
    auto* dev = static_cast<float*>(deviceAllocate(count * 4));
    for (size_t i = 0; i < count; ++i) dev[i] = static_cast<float>((i % 64) + rank);
    float scalar = 0.5f;
    weftRedOp_t op;
    if (weftRedOpCreatePreMulSum(&op, &scalar, weftFloat32, weftScalarHostImmediate, comm) != weftSuccess)
      return weftGetLastError(comm);
    weftResult_t result = weftAllReduce(dev, dev, count, weftFloat32, op, comm, nullptr);
    if (result == weftSuccess) result = weftCommSynchronize(comm);
    std::string error;
    if (result != weftSuccess) error = weftGetLastError(comm);
    for (size_t i = 0; i < count && error.empty(); ++i) {
      float want = 0.5f * static_cast<float>(nranks * (i % 64) + nranks * (nranks - 1) / 2);
      if (dev[i] != want) error = "wrong at " + std::to_string(i);
    }
    weftRedOpDestroy(op, comm);
    deviceRelease(dev);
    return error;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Every collective, type and op on n ranks launched as `mode`, exact.
void expectEveryCaseExact(int n, RankMode mode) {
  std::vector<Case> cases = allCases(n, {0, 7, 1023, 70001});
  auto failures =
      runRanks(n, mode, [&](weftComm_t comm, int rank, int nranks) { return runCases(comm, rank, nranks, cases); });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// WEFT_P2P_DISABLE=1: the FIFOs in host memory; the same results.
TEST_F(EmulatedDevice, FifosInHostMemoryGiveTheSameResults) {
  env_.set("WEFT_P2P_DISABLE", "1");
  expectEveryCaseExact(3, RankMode::DeviceThreads);
}

// Ranks in processes of their own cannot write each other's emulated device
// memory, so their FIFOs live in host memory both map (fifo_route.h): every
// collective, type and op as with threads.
TEST_F(EmulatedDevice, ProcessesStageThroughHostMemoryWithTheSameResults) {
  expectEveryCaseExact(3, RankMode::DeviceProcesses);
}

// Two nodes of two processes (WEFT_HOSTID): a node's ranks stage through
// host memory, the nodes' ranks reach each other through the net transport,
// whose slots the executor's net bridge moves to and from the kernel's FIFOs.
TEST_F(EmulatedDevice, NodesReachEachOtherThroughTheNetBridge) {
  env_.set("WEFT_SOCKET_IFNAME", "lo");
  expectEveryCaseExact(4, RankMode::DeviceNodes);
}

// The protocol: WEFT_DEVICE_PROTOCOL, else WEFT_LL_THRESHOLD when set, else
// what the tuner chose for the call.
TEST(DeviceProtocol, ForcedThenThresholdThenTheTunersChoice) {
  OpDesc op;
  op.collective = Collective::AllReduce;
  op.count = 1024;  // 4 KiB of floats
  for (bool tuner : {false, true}) {
    op.lowLatency = tuner;
    DeviceExecutorConfig config;
    EXPECT_EQ(usesLowLatency(config, op), tuner);
    config.llThreshold = 4096;
    EXPECT_TRUE(usesLowLatency(config, op));
    config.llThreshold = 4095;
    EXPECT_FALSE(usesLowLatency(config, op));
    config.forceProtocol = 1;
    EXPECT_TRUE(usesLowLatency(config, op));
    config.forceProtocol = 0;
    EXPECT_FALSE(usesLowLatency(config, op));
  }
}

// A device tune file whose LL hand-off is all but free: the tuner chooses LL
// for every call of 2 ranks on cores of their own (weft-info --tune --device
// emulated --nranks 2 shows it; where ranks outnumber cores, a hand-off
// waits for the scheduler whatever the protocol), and every collective,
// type and op runs exactly by it.
TEST_F(EmulatedDevice, CallsTheTunerGivesToLlAreExact) {
  char path[] = "/tmp/weft_ll_tune_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const char text[] = "ll_hop_us = 0.001\nll_copy_gbps = 1000\n";
  ASSERT_EQ(write(fd, text, sizeof(text) - 1), static_cast<ssize_t>(sizeof(text) - 1));
  close(fd);
  env_.set("WEFT_DEVICE_TUNE_FILE", path);
  env_.set("WEFT_BUFFSIZE", "8192");
  expectEveryCaseExact(2, RankMode::DeviceThreads);
  remove(path);
}

// Ranks of other processes read each other's registered device buffers
// directly (weftCommRegister: the emulated device's memfd mapped, as CUDA
// IPC maps a GPU's): from the second call on the buffers, slots of 1 MiB
// messages and more carry addresses in the receiver's address space. Every
// result exact, in every round, before and after deregistration.
TEST_F(EmulatedDevice, ProcessesReadEachOthersRegisteredBuffersDirectly) {
  env_.set("WEFT_ALGO", "ring");        // its plans publish by address
  const size_t count = (1u << 18) + 3;  // int32: past WEFT_ZERO_COPY_THRESHOLD's 1 MiB
  auto failures = runRanks(3, RankMode::DeviceProcesses, [&](weftComm_t comm, int rank, int n) -> std::string {
    size_t total = count * static_cast<size_t>(n);
    auto* in = static_cast<int32_t*>(deviceAllocate(total * 4));
    auto* out = static_cast<int32_t*>(deviceAllocate(total * 4));
    if (in == nullptr || out == nullptr) return "weftMemAlloc failed";
    void* registrations[2] = {nullptr, nullptr};
    if (weftCommRegister(comm, in, total * 4, &registrations[0]) != weftSuccess ||
        weftCommRegister(comm, out, total * 4, &registrations[1]) != weftSuccess)
      return std::string("weftCommRegister: ") + weftGetLastError(comm);
    auto finish = [&](weftResult_t result, const char* what) -> std::string {
      if (result == weftSuccess) result = weftCommSynchronize(comm);
      return result == weftSuccess ? "" : std::string(what) + ": " + weftGetLastError(comm);
    };
    auto rounds = [&](int nRounds) -> std::string {
      for (int round = 0; round < nRounds; ++round) {
        for (size_t i = 0; i < count; ++i) in[i] = static_cast<int32_t>(rank * 1000 + i % 977 + round);
        if (std::string e = finish(weftAllReduce(in, out, count, weftInt32, weftSum, comm, nullptr), "all-reduce");
            !e.empty())
          return e;
        for (size_t i = 0; i < count; ++i)
          if (out[i] != static_cast<int32_t>(1000 * n * (n - 1) / 2 + n * static_cast<int>(i % 977 + round)))
            return "all-reduce wrong at " + std::to_string(i) + " in round " + std::to_string(round);
        for (size_t i = 0; i < count; ++i) in[i] = static_cast<int32_t>(rank * 7 + i % 13 + round);
        if (std::string e = finish(weftAllGather(in, out, count, weftInt32, comm, nullptr), "all-gather"); !e.empty())
          return e;
        for (int r = 0; r < n; ++r)
          for (size_t i = 0; i < count; ++i)
            if (out[r * count + i] != static_cast<int32_t>(r * 7 + i % 13 + round))
              return "all-gather wrong at " + std::to_string(r * count + i) + " in round " + std::to_string(round);
        for (size_t j = 0; j < total; ++j) in[j] = static_cast<int32_t>(rank + j % 5 + round);
        if (std::string e =
                finish(weftReduceScatter(in, out, count, weftInt32, weftSum, comm, nullptr), "reduce-scatter");
            !e.empty())
          return e;
        for (size_t i = 0; i < count; ++i)
          if (out[i] != static_cast<int32_t>(n * (n - 1) / 2 + n * static_cast<int>((rank * count + i) % 5 + round)))
            return "reduce-scatter wrong at " + std::to_string(i) + " in round " + std::to_string(round);
        int root = round % n;
        for (size_t i = 0; i < count; ++i) in[i] = rank == root ? static_cast<int32_t>(i % 101 + root) : -1;
        if (std::string e = finish(weftBroadcast(in, out, count, weftInt32, root, comm, nullptr), "broadcast");
            !e.empty())
          return e;
        for (size_t i = 0; i < count; ++i)
          if (out[i] != static_cast<int32_t>(i % 101 + root))
            return "broadcast wrong at " + std::to_string(i) + " in round " + std::to_string(round);
      }
      return "";
    };
    std::string error = rounds(3);
    auto* executor = dynamic_cast<DeviceExecutor*>(comm->executor.get());
    uint64_t direct = executor != nullptr ? executor->crossProcessAddressOps() : 0;
    if (error.empty() && direct == 0) error = "no operation sent by address to a rank of another process";
    // Deregistered: the slots carry data again, as exactly.
    weftCommDeregister(comm, registrations[0]);
    weftCommDeregister(comm, registrations[1]);
    if (error.empty()) error = rounds(2);
    if (error.empty() && executor->crossProcessAddressOps() != direct)
      error = "sent by address after the buffers were deregistered";
    deviceRelease(in);
    deviceRelease(out);
    return error;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Host memory given to a GPU communicator's weftCommRegister is refused,
// naming it; the communicator stays usable.
TEST_F(EmulatedDevice, RegisteringHostMemoryIsRefused) {
  auto failures = runRanks(2, RankMode::DeviceThreads, [&](weftComm_t comm, int, int) -> std::string {
    std::vector<float> host(1024);
    void* handle = nullptr;
    if (weftCommRegister(comm, host.data(), host.size() * 4, &handle) != weftInvalidArgument)
      return "host memory registered";
    if (std::string(weftGetLastError(comm)).find("weftCommRegister") == std::string::npos)
      return std::string("unclear error: ") + weftGetLastError(comm);
    auto* dev = static_cast<float*>(deviceAllocate(1024 * 4));
    for (int i = 0; i < 1024; ++i) dev[i] = 1.0f;
    weftResult_t result = weftAllReduce(dev, dev, 1024, weftFloat32, weftSum, comm, nullptr);
    if (result == weftSuccess) result = weftCommSynchronize(comm);
    std::string error = result == weftSuccess && dev[1023] == 2.0f ? "" : "the communicator is not usable after it";
    deviceRelease(dev);
    return error;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// GPUDirect RDMA, with a net plugin whose devices take device memory (the
// test plugin over sockets, as an RDMA NIC with nvidia_peermem would): the
// kernel writes and reads the net connections' own slots in device memory,
// the bridge passes counts only, and every collective is exact. Without
// WEFT_NET_GDR on the emulated device, the same nodes stage through host
// memory.
TEST_F(EmulatedDevice, NodesSendFromAndReceiveIntoDeviceMemoryWithGpuDirect) {
  env_.set("WEFT_SOCKET_IFNAME", "lo");
  env_.set("WEFT_NET_PLUGIN", WEFT_TEST_NET_PLUGIN);
  env_.set("WEFT_TEST_NET_PTR_CUDA", "1");
  for (const char* gdr : {"1", "-1"}) {
    env_.set("WEFT_NET_GDR", gdr);
    bool wanted = std::string(gdr) == "1";
    std::vector<Case> cases = allCases(4, {0, 7, 1023, 70001});
    auto failures = runRanks(4, RankMode::DeviceNodes, [&](weftComm_t comm, int rank, int nranks) -> std::string {
      std::string error = runCases(comm, rank, nranks, cases);
      auto* executor = dynamic_cast<DeviceExecutor*>(comm->executor.get());
      if (executor == nullptr) return "not a device communicator";
      // 2 nodes of 2: each rank reaches the other node's 2 ranks on every channel.
      int inDevice = executor->deviceMemoryNetLinks(), staged = executor->stagedNetLinks();
      if (error.empty() && (wanted ? inDevice == 0 || staged != 0 : inDevice != 0 || staged == 0))
        error = "WEFT_NET_GDR=" + std::string(wanted ? "1" : "-1") + ": " + std::to_string(inDevice) +
                " net link(s) in device memory, " + std::to_string(staged) + " staged";
      return error;
    });
    EXPECT_TRUE(failures.empty()) << "WEFT_NET_GDR=" << gdr << "\n" << joinFailures(failures);
  }
}

TEST_F(EmulatedDevice, MemFreeRefusesWhatItDidNotAllocate) {
  int local = 0;
  EXPECT_EQ(weftMemFree(&local), weftInvalidArgument);
  void* p = nullptr;
  ASSERT_EQ(weftMemAlloc(&p, 100), weftSuccess);
  EXPECT_EQ(weftMemFree(p), weftSuccess);
}

}  // namespace
}  // namespace weft::test
