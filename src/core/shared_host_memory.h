// Host memory that the other processes of a node can map: weftMemAllocHost's
// allocations, each a memfd mapped shared, which a peer opens through
// /proc/<pid>/fd and maps when a registered buffer inside it is published
// (see weftCommRegister). Process-wide, shared by every communicator.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"

namespace weft {

struct SharedAllocation {
  uint64_t id = 0;  // unique in this process, never reused
  int fd = -1;      // the memfd, open while allocated
  char* base = nullptr;
  size_t bytes = 0;  // mapped (a multiple of the page size)
};

// [address, address + bytes) lies inside [base, base + size) (no overflow).
inline bool rangeHolds(uint64_t base, uint64_t size, uint64_t address, uint64_t bytes) {
  return address >= base && bytes <= size && address - base <= size - bytes;
}

Result<void*> allocateSharedHost(size_t bytes);
// False when ptr is not an allocation's base.
bool freeSharedHost(void* ptr);
// The allocation holding [ptr, ptr + bytes), if any.
bool findSharedHost(const void* ptr, size_t bytes, SharedAllocation* allocation);
// Maps `bytes` of another process's allocation (its pid and memfd, opened
// through /proc/<pid>/fd) shared into this one; null with *error (errno) when
// that fails. munmap releases it.
char* mapPeerSharedHost(int pid, int fd, size_t bytes, int* error);

}  // namespace weft
