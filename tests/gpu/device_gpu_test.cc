// The device executor on a real GPU: the collective cases on 2 and 3 ranks
// as threads sharing GPU 0 (buffers in CUDA managed memory, so the case code
// reads and writes them as on the host), by the LL and the simple protocol;
// a host buffer refused; an all-reduce captured into a CUDA graph and
// replayed. Skips, saying why, where CUDA finds no GPU.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/collective_cases.h"
#include "common/launcher.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

std::string noGpuReason() {
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess) return std::string("no usable GPU: ") + cudaGetErrorString(rc);
  if (count == 0) return "no GPU";
  return "";
}

void* managedAllocate(size_t bytes) {
  void* p = nullptr;
  return cudaMallocManaged(&p, bytes) == cudaSuccess ? p : nullptr;
}
void managedRelease(void* p) { cudaFree(p); }
const BufferSpace kManaged{managedAllocate, managedRelease};

struct GpuShape {
  int nranks;
  const char* protocol;
};

class GpuCollectives : public ::testing::TestWithParam<GpuShape> {};

TEST_P(GpuCollectives, EveryCollectiveTypeOpAndCountIsExact) {
  std::string reason = noGpuReason();
  if (!reason.empty()) GTEST_SKIP() << reason;
  setenv("WEFT_DEVICE_PROTOCOL", GetParam().protocol, 1);
  setBufferSpace(&kManaged);
  std::vector<Case> cases = allCases(GetParam().nranks);
  auto failures = runRanks(GetParam().nranks, RankMode::DeviceThreads, [&](weftComm_t comm, int rank, int n) {
    cudaSetDevice(0);
    return runCases(comm, rank, n, cases);
  });
  setBufferSpace(nullptr);
  unsetenv("WEFT_DEVICE_PROTOCOL");
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

INSTANTIATE_TEST_SUITE_P(Gpu, GpuCollectives,
                         ::testing::Values(GpuShape{2, ""}, GpuShape{3, ""}, GpuShape{2, "ll"}, GpuShape{3, "simple"}),
                         [](const ::testing::TestParamInfo<GpuShape>& info) {
                           return std::to_string(info.param.nranks) + "ranks" +
                                  (info.param.protocol[0] ? std::string("_") + info.param.protocol : "");
                         });

TEST(GpuDevice, HostBufferIsRefused) {
  std::string reason = noGpuReason();
  if (!reason.empty()) GTEST_SKIP() << reason;
  auto failures = runRanks(2, RankMode::DeviceThreads, [&](weftComm_t comm, int, int) -> std::string {
    std::vector<float> host(64);
    weftResult_t result = weftAllReduce(host.data(), host.data(), 64, weftFloat32, weftSum, comm, nullptr);
    if (result != weftInvalidArgument) return "a host buffer was accepted";
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// Two ranks each capture an all-reduce into a CUDA graph and replay it
// three times; every replay gives the sum.
TEST(GpuDevice, ACapturedAllReduceReplays) {
  std::string reason = noGpuReason();
  if (!reason.empty()) GTEST_SKIP() << reason;
  auto failures = runRanks(2, RankMode::DeviceThreads, [&](weftComm_t comm, int rank, int) -> std::string {
    cudaSetDevice(0);
    const size_t count = 1 << 20;
    float *in = nullptr, *out = nullptr;
    cudaMallocManaged(&in, count * 4);
    cudaMallocManaged(&out, count * 4);
    for (size_t i = 0; i < count; ++i) in[i] = static_cast<float>(rank + 1 + (i % 5));
    cudaStream_t stream;
    cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
    cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
    weftResult_t result = weftAllReduce(in, out, count, weftFloat32, weftSum, comm, stream);
    cudaGraph_t graph = nullptr;
    cudaStreamEndCapture(stream, &graph);
    std::string error;
    if (result != weftSuccess || graph == nullptr) error = std::string("capture failed: ") + weftGetLastError(comm);
    cudaGraphExec_t exec = nullptr;
    if (error.empty() && cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) error = "cudaGraphInstantiate failed";
    for (int replay = 0; replay < 3 && error.empty(); ++replay) {
      // On this rank's stream: a device-wide synchronize would wait for
      // the other rank's replay, which waits for this one.
      cudaMemsetAsync(out, 0, count * 4, stream);
      if (cudaGraphLaunch(exec, stream) != cudaSuccess || cudaStreamSynchronize(stream) != cudaSuccess)
        error = "replay " + std::to_string(replay) + " failed";
      for (size_t i = 0; i < count && error.empty(); ++i)
        if (out[i] != static_cast<float>(3 + 2 * (i % 5)))
          error = "replay " + std::to_string(replay) + " wrong at " + std::to_string(i);
      weftResult_t async = weftSuccess;
      weftCommGetAsyncError(comm, &async);
      if (error.empty() && async != weftSuccess) error = weftGetLastError(comm);
    }
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (graph != nullptr) cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    cudaFree(in);
    cudaFree(out);
    return error;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
}  // namespace weft::test
