// weftMemAlloc and weftMemFree: device memory for GPU communicators, from the
// runtime a communicator on the current device would use; weftMemAllocHost:
// host memory that peer processes map. weftCommRegister and
// weftCommDeregister: buffers a communicator's peers may read directly.
#include <algorithm>

#include "api/comm.h"
#include "core/logging.h"
#include "core/shared_host_memory.h"
#include "device/device_executor.h"
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
  Result<void*> p = runtime.value()->allocateUser(size);
  if (!p.isOk()) return setLastError(nullptr, p.status());
  *ptr = p.value();
  return weftSuccess;
}

weftResult_t weftMemAllocHost(void** ptr, size_t size) {
  if (ptr == nullptr) return setLastError(nullptr, WEFT_ERROR(weftInvalidArgument, "weftMemAllocHost: ptr is NULL"));
  Result<void*> p = allocateSharedHost(size);
  if (!p.isOk()) return setLastError(nullptr, p.status());
  *ptr = p.value();
  return weftSuccess;
}

weftResult_t weftMemFree(void* ptr) {
  if (ptr == nullptr) return weftSuccess;
  // The emulated device's weftMemAlloc memory is shared host memory too:
  // its allocator lets go of it first. Elsewhere weftMemAllocHost memory is
  // freed without asking for a device.
  bool emulated = device::emulatedDeviceSelected();
  if (!emulated && freeSharedHost(ptr)) return weftSuccess;
  Result<std::shared_ptr<device::Runtime>> runtime = currentRuntime();
  Status known = runtime.isOk() ? runtime.value()->checkBuffer(ptr, 1) : runtime.status();
  if (known.isOk()) {
    runtime.value()->free(ptr);
    return weftSuccess;
  }
  if (emulated && freeSharedHost(ptr)) return weftSuccess;
  if (!runtime.isOk()) return setLastError(nullptr, runtime.status());
  return setLastError(nullptr, WEFT_ERROR(weftInvalidArgument, "weftMemFree: %s", known.message().c_str()));
}

weftResult_t weftCommRegister(weftComm_t comm, void* buff, size_t size, void** handle) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  if (handle == nullptr) return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "weftCommRegister: handle is NULL"));
  *handle = nullptr;
  if (buff == nullptr) return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "weftCommRegister: buff is NULL"));
  if (size == 0) return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "weftCommRegister: size is 0"));
  if (reinterpret_cast<uintptr_t>(buff) > UINTPTR_MAX - size)
    return setLastError(comm,
                        WEFT_ERROR(weftInvalidArgument, "weftCommRegister: %p + %zu bytes overflows", buff, size));
  auto registration = std::make_unique<Registration>();
  SharedAllocation allocation;
  bool shareable = comm->device == nullptr && findSharedHost(buff, size, &allocation);
  std::lock_guard<std::mutex> lock(comm->registrationsMutex);
  if (shareable && comm->transports != nullptr) {
    registration->shareEntry = comm->transports->publishRegistration(buff, size, allocation);
    if (registration->shareEntry < 0)
      WEFT_INFO(kLogInit, "rank %d: weftCommRegister: the table of registered buffers is full; %p is copied",
                comm->rank, buff);
  } else if (!shareable && comm->device == nullptr) {
    WEFT_INFO(kLogInit,
              "rank %d: weftCommRegister: %p (%zu bytes) is not weftMemAllocHost memory: peers of other processes "
              "copy it",
              comm->rank, buff, size);
  } else if (comm->device != nullptr) {
    // Device memory: peers of other processes on this node map it (CUDA IPC,
    // or the emulated device's memfd) and read it directly.
    Status onDevice = comm->device->checkBuffer(buff, size);
    if (!onDevice.isOk())
      return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "weftCommRegister: %s", onDevice.message().c_str()));
    if (auto* executor = dynamic_cast<DeviceExecutor*>(comm->executor.get())) {
      Result<int> entry = executor->registerBuffer(buff, size);
      if (!entry.isOk())
        WEFT_INFO(kLogInit, "rank %d: weftCommRegister: %s; peers of other processes copy it", comm->rank,
                  entry.status().message().c_str());
      else
        registration->deviceEntry = entry.value();
    }
  }
  *handle = registration.get();
  comm->registrations.push_back(std::move(registration));
  return weftSuccess;
}

weftResult_t weftCommDeregister(weftComm_t comm, void* handle) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  std::lock_guard<std::mutex> lock(comm->registrationsMutex);
  auto it = std::find_if(comm->registrations.begin(), comm->registrations.end(),
                         [handle](const std::unique_ptr<Registration>& r) { return r.get() == handle; });
  if (it == comm->registrations.end())
    return setLastError(
        comm, WEFT_ERROR(weftInvalidArgument, "weftCommDeregister: %p is not a registration of rank %d's communicator",
                         handle, comm->rank));
  if ((*it)->shareEntry >= 0 && comm->transports != nullptr) comm->transports->withdrawRegistration((*it)->shareEntry);
  if ((*it)->deviceEntry >= 0)
    if (auto* executor = dynamic_cast<DeviceExecutor*>(comm->executor.get()))
      executor->deregisterBuffer((*it)->deviceEntry);
  comm->registrations.erase(it);
  return weftSuccess;
}

}  // extern "C"
