// All-reduce on one GPU shared by -t thread ranks (GPU communicators with
// allowSharedGpu), each on a stream of its own, over sizes -b..-e (factor
// -f): time per operation launched normally, algbw and busbw, and the first
// wrong element (inputs of small integers, sums exact). Types: -d float |
// bfloat16. Beside gpu_bandwidth's device-to-device copy bandwidth B, the
// target is algbw >= 0.7 * B / 4 at 1 GiB for 2 ranks.
#include <cuda_runtime.h>
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
  for (int c; (c = getopt(argc, argv, "t:b:e:f:n:w:d:")) != -1;) {
    switch (c) {
      case 't': nranks = atoi(optarg); break;
      case 'b': minBytes = strtoull(optarg, nullptr, 0); break;
      case 'e': maxBytes = strtoull(optarg, nullptr, 0); break;
      case 'f': factor = strtoull(optarg, nullptr, 0); break;
      case 'n': iters = atoi(optarg); break;
      case 'w': warmup = atoi(optarg); break;
      case 'd': type = optarg; break;
      default:
        die("usage: %s [-t ranks] [-b min] [-e max] [-f factor] [-n iters] [-w warmup] [-d float|bfloat16]", argv[0]);
    }
  }
  weftDataType_t dtype = type == "bfloat16" ? weftBfloat16 : weftFloat32;
  size_t tb = dtype == weftBfloat16 ? 2 : 4;
  weftUniqueId id;
  if (weftGetUniqueId(&id) != weftSuccess) die("weftGetUniqueId: %s", weftGetLastError(nullptr));
  std::vector<weftComm_t> comms(nranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < nranks; ++r)
    threads.emplace_back([&, r] {
      cudaSetDevice(0);
      weftConfig_t config = WEFT_CONFIG_INITIALIZER;
      config.cudaDevice = 0;
      config.allowSharedGpu = 1;
      if (weftCommInitRankConfig(&comms[r], nranks, id, r, &config) != weftSuccess)
        die("rank %d: %s", r, weftGetLastError(nullptr));
    });
  for (auto& t : threads) t.join();
  threads.clear();
  printf("# weft all-reduce on one GPU, %d thread ranks, %s, sum\n", nranks, type.c_str());
  printf("# %12s %12s %10s %10s %10s %8s\n", "size", "count", "time(us)", "algbw", "busbw", "#wrong");
  for (size_t bytes = minBytes; bytes <= maxBytes; bytes *= factor) {
    size_t count = bytes / tb;
    std::vector<double> seconds(nranks);
    std::vector<long long> wrong(nranks, 0);
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
        cudaMemcpy(host.data(), buffer, bytes, cudaMemcpyDeviceToHost);
        for (size_t i = 0; i < count && wrong[r] == 0; ++i) {
          float want = 0;
          for (int q = 0; q < nranks; ++q) want += static_cast<float>((i + q) % 8);
          float got;
          if (dtype == weftBfloat16) {
            uint16_t h;
            memcpy(&h, host.data() + i * 2, 2);
            uint32_t bits = static_cast<uint32_t>(h) << 16;
            memcpy(&got, &bits, 4);
          } else {
            memcpy(&got, host.data() + i * 4, 4);
          }
          if (got != want) wrong[r] = static_cast<long long>(i) + 1;
        }
        auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; ++i) weftAllReduce(buffer, buffer, count, dtype, weftSum, comms[r], stream);
        if (weftCommSynchronize(comms[r]) != weftSuccess) die("rank %d: %s", r, weftGetLastError(comms[r]));
        seconds[r] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters;
        cudaFree(buffer);
        cudaStreamDestroy(stream);
      });
    for (auto& t : threads) t.join();
    threads.clear();
    double worst = 0;
    long long bad = 0;
    for (int r = 0; r < nranks; ++r) {
      worst = std::max(worst, seconds[r]);
      bad += wrong[r] != 0;
    }
    double algbw = static_cast<double>(count * tb) / worst / 1e9;
    printf("  %12zu %12zu %10.2f %10.2f %10.2f %8lld\n", count * tb, count, worst * 1e6, algbw,
           algbw * 2.0 * (nranks - 1) / nranks, bad);
    fflush(stdout);
  }
  for (weftComm_t comm : comms) weftCommDestroy(comm);
  return 0;
}
