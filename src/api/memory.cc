// weftMemAlloc and weftMemFree: device memory for GPU communicators, from the
// runtime a communicator on the current device would use.
#include "api/comm.h"
#include "core/logging.h"
#include "device/runtime.h"
#include "weft/weft.h"

#if defined(WEFT_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

using namespace weft;

namespace {

Result<std::shared_ptr<device::Runtime>> currentRuntime() {
  int ordinal = 0;
#if defined(WEFT_HAVE_CUDA)
  if (!device::emulatedDeviceSelected() && cudaGetDevice(&ordinal) != cudaSuccess) {
    cudaGetLastError();
    ordinal = 0;
  }
#endif
  return device::runtimeFor(ordinal);
}

}  // namespace

extern "C" {

weftResult_t weftMemAlloc(void** ptr, size_t size) {
  if (ptr == nullptr) return setLastError(nullptr, WEFT_ERROR(weftInvalidArgument, "weftMemAlloc: ptr is NULL"));
  Result<std::shared_ptr<device::Runtime>> runtime = currentRuntime();
  if (!runtime.isOk()) return setLastError(nullptr, runtime.status());
  Result<void*> p = runtime.value()->allocate(size);
  if (!p.isOk()) return setLastError(nullptr, p.status());
  *ptr = p.value();
  return weftSuccess;
}

weftResult_t weftMemFree(void* ptr) {
  if (ptr == nullptr) return weftSuccess;
  Result<std::shared_ptr<device::Runtime>> runtime = currentRuntime();
  if (!runtime.isOk()) return setLastError(nullptr, runtime.status());
  Status known = runtime.value()->checkBuffer(ptr, 1);
  if (!known.isOk())
    return setLastError(nullptr, WEFT_ERROR(weftInvalidArgument, "weftMemFree: %s", known.message().c_str()));
  runtime.value()->free(ptr);
  return weftSuccess;
}

}  // extern "C"
