// What every device runtime shares: host memory between processes.
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "core/shared_host_memory.h"
#include "device/runtime.h"

namespace weft::device {

Result<void*> Runtime::allocateInterprocess(size_t bytes) {
  Result<void*> p = allocateSharedHost(bytes);  // zeroed: a fresh memfd
  if (!p.isOk()) return p.status();
  SharedAllocation allocation;
  findSharedHost(p.value(), 1, &allocation);
  Status registered = registerHost(allocation.base, allocation.bytes);
  if (!registered.isOk()) {
    freeSharedHost(p.value());
    return registered;
  }
  return p;
}

void Runtime::freeInterprocess(void* p) {
  if (p == nullptr) return;
  unregisterHost(p);
  freeSharedHost(p);
}

Result<MemoryHandle> Runtime::exportInterprocess(void* p) const {
  SharedAllocation allocation;
  if (!findSharedHost(p, 1, &allocation) || allocation.base != p)
    return WEFT_ERROR(weftInternalError, "%p is not host memory allocated for other processes", p);
  MemoryHandle handle = MemoryHandle::ofPointer(p, 3);
  handle.fd = allocation.fd;
  handle.bytes = allocation.bytes;
  return handle;
}

Result<void*> Runtime::importInterprocess(const MemoryHandle& handle) {
  if (handle.kind != 3)
    return WEFT_ERROR(weftInternalError, "a peer offered memory of kind %u where host memory was expected",
                      handle.kind);
  if (handle.pid == getpid()) return reinterpret_cast<void*>(handle.address);
  int error = 0;
  char* p = mapPeerSharedHost(handle.pid, handle.fd, handle.bytes, &error);
  if (p == nullptr)
    return WEFT_ERROR(weftSystemError, "cannot map %llu bytes of process %d's host memory (fd %d): %s",
                      static_cast<unsigned long long>(handle.bytes), handle.pid, handle.fd, strerror(error));
  Status registered = registerHost(p, handle.bytes);
  if (!registered.isOk()) {
    munmap(p, handle.bytes);
    return registered;
  }
  return static_cast<void*>(p);
}

Result<void*> Runtime::importRange(const MemoryHandle& handle) {
  return handle.kind == 3 ? importInterprocess(handle) : importMemory(handle);
}

void Runtime::closeRange(void* p, const MemoryHandle& handle) {
  if (handle.kind == 3)
    closeInterprocess(p, handle);
  else if (handle.pid != getpid())
    closeImported(p);
}

void Runtime::closeInterprocess(void* p, const MemoryHandle& handle) {
  if (p == nullptr || handle.pid == getpid()) return;
  unregisterHost(p);
  munmap(p, handle.bytes);
}

}  // namespace weft::device
