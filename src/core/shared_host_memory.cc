#include "core/shared_host_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <map>
#include <mutex>

namespace weft {
namespace {

std::mutex& registryMutex() {
  static std::mutex mutex;
  return mutex;
}
std::map<uintptr_t, SharedAllocation>& registry() {  // by base address
  static std::map<uintptr_t, SharedAllocation> allocations;
  return allocations;
}
uint64_t nextId = 1;

}  // namespace

Result<void*> allocateSharedHost(size_t bytes) {
  if (bytes == 0) return WEFT_ERROR(weftInvalidArgument, "weftMemAllocHost: size is 0");
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (bytes > SIZE_MAX - page) return WEFT_ERROR(weftInvalidArgument, "weftMemAllocHost: %zu bytes overflow", bytes);
  size_t mapped = (bytes + page - 1) / page * page;
  int fd = memfd_create("weft-host-memory", MFD_CLOEXEC);
  if (fd < 0) return WEFT_ERROR(weftSystemError, "weftMemAllocHost: memfd_create failed: %s", strerror(errno));
  if (ftruncate(fd, static_cast<off_t>(mapped)) != 0) {
    int error = errno;
    close(fd);
    return WEFT_ERROR(weftSystemError, "weftMemAllocHost: %zu bytes: ftruncate failed: %s", mapped, strerror(error));
  }
  void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int error = errno;
    close(fd);
    return WEFT_ERROR(weftSystemError, "weftMemAllocHost: mapping %zu bytes failed: %s", mapped, strerror(error));
  }
  madvise(p, mapped, MADV_HUGEPAGE);  // where the kernel gives shared memory huge pages
  std::lock_guard<std::mutex> lock(registryMutex());
  SharedAllocation allocation{nextId++, fd, static_cast<char*>(p), mapped};
  registry()[reinterpret_cast<uintptr_t>(p)] = allocation;
  return p;
}

bool freeSharedHost(void* ptr) {
  SharedAllocation allocation;
  {
    std::lock_guard<std::mutex> lock(registryMutex());
    auto it = registry().find(reinterpret_cast<uintptr_t>(ptr));
    if (it == registry().end()) return false;
    allocation = it->second;
    registry().erase(it);
  }
  munmap(allocation.base, allocation.bytes);
  close(allocation.fd);
  return true;
}

char* mapPeerSharedHost(int pid, int fd, size_t bytes, int* error) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
  int local = open(path, O_RDWR | O_CLOEXEC);
  if (local < 0) {
    *error = errno;
    return nullptr;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, local, 0);
  *error = errno;
  close(local);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

bool findSharedHost(const void* ptr, size_t bytes, SharedAllocation* allocation) {
  auto p = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(registryMutex());
  auto it = registry().upper_bound(p);
  if (it == registry().begin()) return false;
  --it;
  if (!rangeHolds(it->first, it->second.bytes, p, bytes)) return false;
  *allocation = it->second;
  return true;
}

}  // namespace weft
