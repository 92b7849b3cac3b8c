// All-reduce on one GPU shared by -t thread ranks (GPU communicators with
// allowSharedGpu), each on a stream of its own, over sizes -b..-e (factor
// -f): time per operation launched normally, algbw and busbw, and the first
// wrong element (inputs of small integers, sums exact). Types: -d float |
// bfloat16. Beside gpu_bandwidth's device-to-device copy bandwidth B, the
// target is algbw >= 0.7 * B / 4 at 1 GiB for 2 ranks.
//
// -N LIBNCCL runs NCCL's all-reduce beside weft's, in the same process, on
// the same buffers, streams and inputs (loaded with dlopen from the library
// named, e.g. the nvidia-nccl-cu13 wheel's lib/libnccl.so.2), checks its
// results the same way and prints its time and weft's speed against it
// (nccl time / weft time: above 1, weft is faster). Several NCCL ranks on one
// GPU need NCCL 2.30 or newer and NCCL_MULTI_RANK_GPU_ENABLE=1 (set here
// unless already set).
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <getopt.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "weft/weft.h"

namespace {

__attribute__((format(printf, 1, 2))) [[noreturn]] void die(const char* fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vfprintf(stderr, fmt, args);
  va_end(args);
  fputc('\n', stderr);
  exit(1);
}

// The few NCCL entry points used, declared here (the C ABI of nccl.h) so
// that nothing links NCCL: it is loaded at run time when asked for.
struct NcclUniqueId {
  char internal[128];
};
using NcclComm = void*;
constexpr int kNcclSuccess = 0, kNcclSum = 0, kNcclFloat32 = 7, kNcclBfloat16 = 9;

struct Nccl {
  void* library = nullptr;
  int (*getVersion)(int*) = nullptr;
  int (*getUniqueId)(NcclUniqueId*) = nullptr;
  int (*commInitRank)(NcclComm*, int, NcclUniqueId, int) = nullptr;
  int (*allReduce)(const void*, void*, size_t, int, int, NcclComm, cudaStream_t) = nullptr;
  int (*commDestroy)(NcclComm) = nullptr;
  const char* (*getErrorString)(int) = nullptr;

  template <typename F>
  void bind(F* fn, const char* name) {
    *fn = reinterpret_cast<F>(dlsym(library, name));
    if (*fn == nullptr) die("NCCL: %s not found: %s", name, dlerror());
  }
  void load(const char* path) {
    setenv("NCCL_MULTI_RANK_GPU_ENABLE", "1", 0);
    library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) die("NCCL: cannot load %s: %s", path, dlerror());
    bind(&getVersion, "ncclGetVersion");
    bind(&getUniqueId, "ncclGetUniqueId");
    bind(&commInitRank, "ncclCommInitRank");
    bind(&allReduce, "ncclAllReduce");
    bind(&commDestroy, "ncclCommDestroy");
    bind(&getErrorString, "ncclGetErrorString");
  }
  void check(int rc, const char* what, int rank) const {
    if (rc != kNcclSuccess) die("rank %d: NCCL %s: %s", rank, what, getErrorString(rc));
  }
};

uint16_t floatToBf16(float v) {
  uint32_t bits;
  memcpy(&bits, &v, 4);
  return static_cast<uint16_t>(bits >> 16);  // small integers: exact
}

}  // namespace

int main(int argc, char** argv) {
  int nranks = 2, iters = 20, warmup = 5;
  size_t minBytes = 8, maxBytes = size_t{1} << 30, factor = 2;
  std::string type = "float";
  const char* ncclPath = nullptr;
  for (int c; (c = getopt(argc, argv, "t:b:e:f:n:w:d:N:")) != -1;) {
    switch (c) {
      case 't': nranks = atoi(optarg); break;
      case 'b': minBytes = strtoull(optarg, nullptr, 0); break;
      case 'e': maxBytes = strtoull(optarg, nullptr, 0); break;
      case 'f': factor = strtoull(optarg, nullptr, 0); break;
      case 'n': iters = atoi(optarg); break;
      case 'w': warmup = atoi(optarg); break;
      case 'd': type = optarg; break;
      case 'N': ncclPath = optarg; break;
      default:
        die("usage: %s [-t ranks] [-b min] [-e max] [-f factor] [-n iters] [-w warmup] [-d float|bfloat16] "
            "[-N libnccl.so.2]",
            argv[0]);
    }
  }
  weftDataType_t dtype = type == "bfloat16" ? weftBfloat16 : weftFloat32;
  size_t tb = dtype == weftBfloat16 ? 2 : 4;
  weftUniqueId id;
  if (weftGetUniqueId(&id) != weftSuccess) die("weftGetUniqueId: %s", weftGetLastError(nullptr));
  Nccl nccl;
  NcclUniqueId ncclId{};
  int ncclVersion = 0;
  if (ncclPath != nullptr) {
    nccl.load(ncclPath);
    nccl.check(nccl.getVersion(&ncclVersion), "ncclGetVersion", 0);
    nccl.check(nccl.getUniqueId(&ncclId), "ncclGetUniqueId", 0);
  }
  std::vector<weftComm_t> comms(nranks);
  std::vector<NcclComm> ncclComms(nranks, nullptr);
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r)
    threads.emplace_back([&, r] {
      cudaSetDevice(0);
      weftConfig_t config = WEFT_CONFIG_INITIALIZER;
      config.cudaDevice = 0;
      config.allowSharedGpu = 1;
      if (weftCommInitRankConfig(&comms[r], nranks, id, r, &config) != weftSuccess)
        die("rank %d: %s", r, weftGetLastError(nullptr));
      if (ncclPath != nullptr) nccl.check(nccl.commInitRank(&ncclComms[r], nranks, ncclId, r), "ncclCommInitRank", r);
    });
  for (auto& t : threads) t.join();
  threads.clear();
  printf("# weft all-reduce on one GPU, %d thread ranks, %s, sum\n", nranks, type.c_str());
  if (ncclPath != nullptr)
    printf("# beside NCCL %d.%d.%d from %s, same buffers and streams; weft/nccl: NCCL's time over weft's\n",
           ncclVersion / 10000, ncclVersion / 100 % 100, ncclVersion % 100, ncclPath);
  printf("# %12s %12s %10s %10s %10s %8s", "size", "count", "time(us)", "algbw", "busbw", "#wrong");
  if (ncclPath != nullptr) printf(" %10s %10s %8s %9s", "nccl(us)", "nccl busbw", "#wrong", "weft/nccl");
  printf("\n");
  for (size_t bytes = minBytes; bytes <= maxBytes; bytes *= factor) {
    size_t count = bytes / tb;
    std::vector<double> seconds(nranks), ncclSeconds(nranks);
    std::vector<long long> wrong(nranks, 0), ncclWrong(nranks, 0);
    for (int r = 0; r < nranks; ++r)
      threads.emplace_back([&, r] {
        cudaSetDevice(0);
        cudaStream_t stream;
        cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
        void* buffer = nullptr;
        if (cudaMalloc(&buffer, bytes) != cudaSuccess) die("cudaMalloc %zu", bytes);
        std::vector<char> host(bytes);
        for (size_t i = 0; i < count; ++i) {
          float v = static_cast<float>((i + r) % 8);
          if (dtype == weftBfloat16) {
            uint16_t h = floatToBf16(v);
            memcpy(host.data() + i * 2, &h, 2);
          } else {
            memcpy(host.data() + i * 4, &v, 4);
          }
        }
        for (int i = 0; i < warmup; ++i) weftAllReduce(buffer, buffer, count, dtype, weftSum, comms[r], stream);
        cudaMemcpy(buffer, host.data(), bytes, cudaMemcpyHostToDevice);
        // One checked run, then the timed ones.
        if (weftAllReduce(buffer, buffer, count, dtype, weftSum, comms[r], stream) != weftSuccess ||
            weftCommSynchronize(comms[r]) != weftSuccess)
          die("rank %d: %s", r, weftGetLastError(comms[r]));
        // The first wrong element (1-based), 0 when every one is the sum.
        auto firstWrong = [&] {
          std::vector<char> result(bytes);
          cudaMemcpy(result.data(), buffer, bytes, cudaMemcpyDeviceToHost);
          for (size_t i = 0; i < count; ++i) {
            float want = 0;
            for (int q = 0; q < nranks; ++q) want += static_cast<float>((i + q) % 8);
            float got;
            if (dtype == weftBfloat16) {
              uint16_t h;
              memcpy(&h, result.data() + i * 2, 2);
              uint32_t bits = static_cast<uint32_t>(h) << 16;
              memcpy(&got, &bits, 4);
            } else {
              memcpy(&got, result.data() + i * 4, 4);
            }
            if (got != want) return static_cast<long long>(i) + 1;
          }
          return 0LL;
        };
        wrong[r] = firstWrong();
        auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; ++i) weftAllReduce(buffer, buffer, count, dtype, weftSum, comms[r], stream);
        if (weftCommSynchronize(comms[r]) != weftSuccess) die("rank %d: %s", r, weftGetLastError(comms[r]));
        seconds[r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters;
        if (ncclPath != nullptr) {
          // The same warm-up, checked run and timed runs through NCCL.
          int ncclType = dtype == weftBfloat16 ? kNcclBfloat16 : kNcclFloat32;
          auto ncclRun = [&] {
            nccl.check(nccl.allReduce(buffer, buffer, count, ncclType, kNcclSum, ncclComms[r], stream), "ncclAllReduce",
                       r);
          };
          for (int i = 0; i < warmup; ++i) ncclRun();
          cudaStreamSynchronize(stream);
          cudaMemcpy(buffer, host.data(), bytes, cudaMemcpyHostToDevice);
          ncclRun();
          if (cudaStreamSynchronize(stream) != cudaSuccess) die("rank %d: NCCL's all-reduce failed on the stream", r);
          ncclWrong[r] = firstWrong();
          auto ncclStart = std::chrono::steady_clock::now();
          for (int i = 0; i < iters; ++i) ncclRun();
          cudaStreamSynchronize(stream);
          ncclSeconds[r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - ncclStart).count() / iters;
        }
        cudaFree(buffer);
        cudaStreamDestroy(stream);
      });
    for (auto& t : threads) t.join();
    threads.clear();
    double worst = 0, ncclWorst = 0;
    long long bad = 0, ncclBad = 0;
    for (int r = 0; r < nranks; ++r) {
      worst = std::max(worst, seconds[r]);
      ncclWorst = std::max(ncclWorst, ncclSeconds[r]);
      bad += wrong[r] != 0;
      ncclBad += ncclWrong[r] != 0;
    }
    double algbw = static_cast<double>(count * tb) / worst / 1e9;
    double bus = 2.0 * (nranks - 1) / nranks;
    printf("  %12zu %12zu %10.2f %10.2f %10.2f %8lld", count * tb, count, worst * 1e6, algbw, algbw * bus, bad);
    if (ncclPath != nullptr)
      printf(" %10.2f %10.2f %8lld %9.2f", ncclWorst * 1e6, static_cast<double>(count * tb) / ncclWorst / 1e9 * bus,
             ncclBad, ncclWorst / worst);
    printf("\n");
    fflush(stdout);
  }
  for (weftComm_t comm : comms) weftCommDestroy(comm);
  for (NcclComm comm : ncclComms)
    if (comm != nullptr) nccl.commDestroy(comm);
  return 0;
}
