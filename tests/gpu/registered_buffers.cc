// One rank of a GPU communicator whose ranks are processes of one node
// (started by tests/integration/env_launch.sh: WEFT_RANK, WEFT_NRANKS,
// WEFT_COMM_ID), on device 0, which they share. Its buffers come from
// weftMemAlloc (cudaMalloc on a GPU, a memfd on the emulated device) and are
// registered with weftCommRegister, so that the peers map them (CUDA IPC, or
// the memfd) and read them directly. Runs all-reduce, all-gather and
// broadcast of 4 MiB a few rounds, checks every element, and prints how many
// operations went by address to ranks of other processes. Exit status 0 when
// every result is exact and some did.
//   env_launch.sh registered_buffers 2
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "api/comm.h"
#include "device/device_executor.h"
#include "device/runtime.h"
#include "weft/weft.h"

#if defined(WEFT_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace {

bool emulated() { return weft::device::emulatedDeviceSelected(); }

void toDevice(void* dst, const void* src, size_t bytes) {
#if defined(WEFT_HAVE_CUDA)
  if (!emulated()) {
    cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
    return;
  }
#endif
  memcpy(dst, src, bytes);
}

void toHost(void* dst, const void* src, size_t bytes) {
#if defined(WEFT_HAVE_CUDA)
  if (!emulated()) {
    cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
    return;
  }
#endif
  memcpy(dst, src, bytes);
}

int fail(int rank, const std::string& what) {
  fprintf(stderr, "rank %d: %s\n", rank, what.c_str());
  return 1;
}

}  // namespace

int main() {
  const char* rankText = getenv("WEFT_RANK");
  const char* nranksText = getenv("WEFT_NRANKS");
  if (rankText == nullptr || nranksText == nullptr || getenv("WEFT_COMM_ID") == nullptr) {
    fprintf(stderr, "start with WEFT_RANK, WEFT_NRANKS and WEFT_COMM_ID (tests/integration/env_launch.sh)\n");
    return 2;
  }
  int rank = atoi(rankText), n = atoi(nranksText);
#if defined(WEFT_HAVE_CUDA)
  int devices = 0;
  if (!emulated() && (cudaGetDeviceCount(&devices) != cudaSuccess || devices < 1)) {
    printf("rank %d: no GPU (set WEFT_DEVICE=emulated for the emulated device): skipped\n", rank);
    return 77;
  }
  if (!emulated()) cudaSetDevice(0);
#else
  if (!emulated()) {
    printf("rank %d: built without CUDA and WEFT_DEVICE is not emulated: skipped\n", rank);
    return 77;
  }
#endif
  weftUniqueId id;
  if (weftGetUniqueId(&id) != weftSuccess) return fail(rank, "weftGetUniqueId failed");
  weftConfig_t config = WEFT_CONFIG_INITIALIZER;
  config.cudaDevice = 0;
  config.allowSharedGpu = 1;
  weftComm_t comm = nullptr;
  if (weftCommInitRankConfig(&comm, n, id, rank, &config) != weftSuccess)
    return fail(rank, std::string("init: ") + weftGetLastError(nullptr));

  const size_t count = size_t{1} << 20;  // int32: 4 MiB, sent by address
  size_t total = count * static_cast<size_t>(n);
  void* in = nullptr;
  void* out = nullptr;
  if (weftMemAlloc(&in, total * 4) != weftSuccess || weftMemAlloc(&out, total * 4) != weftSuccess)
    return fail(rank, std::string("weftMemAlloc: ") + weftGetLastError(nullptr));
  void* registrations[2] = {nullptr, nullptr};
  if (weftCommRegister(comm, in, total * 4, &registrations[0]) != weftSuccess ||
      weftCommRegister(comm, out, total * 4, &registrations[1]) != weftSuccess)
    return fail(rank, std::string("weftCommRegister: ") + weftGetLastError(comm));
  std::vector<int32_t> host(total), got(total);
  auto run = [&](weftResult_t result, const char* what) -> bool {
    if (result == weftSuccess) result = weftCommSynchronize(comm);
    if (result != weftSuccess) fprintf(stderr, "rank %d: %s: %s\n", rank, what, weftGetLastError(comm));
    return result == weftSuccess;
  };
  for (int round = 0; round < 4; ++round) {
    for (size_t i = 0; i < count; ++i) host[i] = static_cast<int32_t>(rank * 1000 + i % 977 + round);
    toDevice(in, host.data(), count * 4);
    if (!run(weftAllReduce(in, out, count, weftInt32, weftSum, comm, nullptr), "all-reduce")) return 1;
    toHost(got.data(), out, count * 4);
    for (size_t i = 0; i < count; ++i)
      if (got[i] != static_cast<int32_t>(1000 * n * (n - 1) / 2 + n * static_cast<int>(i % 977 + round)))
        return fail(rank, "all-reduce wrong at " + std::to_string(i));
    for (size_t i = 0; i < count; ++i) host[i] = static_cast<int32_t>(rank * 7 + i % 13 + round);
    toDevice(in, host.data(), count * 4);
    if (!run(weftAllGather(in, out, count, weftInt32, comm, nullptr), "all-gather")) return 1;
    toHost(got.data(), out, total * 4);
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < count; ++i)
        if (got[r * count + i] != static_cast<int32_t>(r * 7 + i % 13 + round))
          return fail(rank, "all-gather wrong at " + std::to_string(r * count + i));
    int root = round % n;
    for (size_t i = 0; i < count; ++i) host[i] = rank == root ? static_cast<int32_t>(i % 101 + root) : -1;
    toDevice(in, host.data(), count * 4);
    if (!run(weftBroadcast(in, out, count, weftInt32, root, comm, nullptr), "broadcast")) return 1;
    toHost(got.data(), out, count * 4);
    for (size_t i = 0; i < count; ++i)
      if (got[i] != static_cast<int32_t>(i % 101 + root)) return fail(rank, "broadcast wrong at " + std::to_string(i));
  }
  auto* executor = dynamic_cast<weft::DeviceExecutor*>(comm->executor.get());
  uint64_t direct = executor != nullptr ? executor->crossProcessAddressOps() : 0;
  printf("rank %d: %s, %d processes: every result exact; %llu operation(s) sent by address to other processes\n", rank,
         emulated() ? "emulated device" : "GPU", n, static_cast<unsigned long long>(direct));
  weftCommDeregister(comm, registrations[0]);
  weftCommDeregister(comm, registrations[1]);
  weftMemFree(in);
  weftMemFree(out);
  weftCommDestroy(comm);
  return direct > 0 ? 0 : 1;
}
