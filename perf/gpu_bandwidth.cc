// gpu_bandwidth: device memory bandwidth B (bytes read plus written per
// second) by cudaMemcpy device to device, beside weft's copy and reduction
// kernels on the same buffers: the bound the GPU collectives are measured
// against. Usage: gpu_bandwidth [-b BYTES] [-n ITERS] [-d DEVICE]
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

#include "cuda/reduce_kernels.h"

namespace {

#define CHECK(call)                                                               \
  do {                                                                            \
    cudaError_t rc_ = (call);                                                     \
    if (rc_ != cudaSuccess) {                                                     \
      fprintf(stderr, "gpu_bandwidth: %s: %s\n", #call, cudaGetErrorString(rc_)); \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

// Seconds per call of fn, over iters calls after one warm-up.
double timeIt(const std::function<void()>& fn, int iters) {
  cudaEvent_t start, stop;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&stop));
  fn();
  CHECK(cudaEventRecord(start));
  for (int i = 0; i < iters; ++i) fn();
  CHECK(cudaEventRecord(stop));
  CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, start, stop));
  return ms / 1e3 / iters;
}

}  // namespace

int main(int argc, char** argv) {
  size_t bytes = size_t{1} << 30;
  int iters = 20, device = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "-b") == 0)
      bytes = strtoull(argv[i + 1], nullptr, 10);
    else if (strcmp(argv[i], "-n") == 0)
      iters = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "-d") == 0)
      device = atoi(argv[i + 1]);
  }
  int count = 0;
  cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess || count == 0) {
    printf("# gpu_bandwidth: no GPU (%s)\n", rc != cudaSuccess ? cudaGetErrorString(rc) : "0 devices");
    return 0;
  }
  CHECK(cudaSetDevice(device));
  cudaDeviceProp prop{};
  CHECK(cudaGetDeviceProperties(&prop, device));
  void *a, *b, *c;
  CHECK(cudaMalloc(&a, bytes));
  CHECK(cudaMalloc(&b, bytes));
  CHECK(cudaMalloc(&c, bytes));
  CHECK(cudaMemset(a, 0, bytes));
  CHECK(cudaMemset(b, 0, bytes));
  printf("# gpu_bandwidth: %s (device %d), %zu bytes, %d iterations; GB/s = bytes read + written per second\n",
         prop.name, device, bytes, iters);
  double t = timeIt([&] { CHECK(cudaMemcpyAsync(c, a, bytes, cudaMemcpyDeviceToDevice)); }, iters);
  double copyB = 2.0 * bytes / t / 1e9;
  printf("%-34s %10.1f GB/s  (B)\n", "cudaMemcpy device to device", copyB);
  t = timeIt([&] { CHECK(weft::cuda::launchCopy(c, a, bytes, nullptr)); }, iters);
  printf("%-34s %10.1f GB/s  (%.0f%% of B)\n", "weft copy kernel", 2.0 * bytes / t / 1e9,
         100 * 2.0 * bytes / t / 1e9 / copyB);
  for (auto [type, name] : {std::pair{weftFloat32, "float32"}, std::pair{weftBfloat16, "bfloat16"}}) {
    size_t n = bytes / (type == weftFloat32 ? 4 : 2);
    t = timeIt([&] { CHECK(weft::cuda::launchReduce(c, a, b, n, type, weftSum, nullptr)); }, iters);
    printf("%-34s %10.1f GB/s  (%.0f%% of B)\n", (std::string("weft reduce sum ") + name).c_str(),
           3.0 * bytes / t / 1e9, 100 * 3.0 * bytes / t / 1e9 / copyB);
  }
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 0;
}
