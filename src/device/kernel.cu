// The device plan interpreter as a CUDA kernel: one thread block per block
// of the launch (work.h), kThreads lanes each. The same interpreter runs on
// the emulated device (emulated.cc). Compiled with -dlcm=cg (src/CMakeLists.txt):
// loads bypass the SM's L1, which is not coherent with writes by peers on
// other SMs or GPUs, so a FIFO slot read again after reuse is never stale.
#include "device/interpreter.h"
#include "device/kernel.h"

namespace weft::device {
namespace {

__global__ void __launch_bounds__(kKernelThreads) groupKernel(const Work* work) {
  runBlock(*work, static_cast<int>(blockIdx.x));
}

}  // namespace

cudaError_t launchGroupKernel(const Work* work, int blocks, cudaStream_t stream) {
  groupKernel<<<blocks, kKernelThreads, 0, stream>>>(work);
  return cudaGetLastError();
}

}  // namespace weft::device
