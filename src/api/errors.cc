#include <atomic>
#include <mutex>
#include <string>

#include "api/comm.h"
#include "core/logging.h"

namespace weft {
namespace {

// Live communicators in an open-addressing table of atomic pointers: a call
// checks its comm with a few loads and no lock; creation and destruction
// take the mutex.
constexpr size_t kRegistrySlots = 4096;
std::atomic<const weftComm*> registrySlots[kRegistrySlots];
std::mutex registryMutex;
size_t registryCount = 0;
const weftComm* const kTombstone = reinterpret_cast<const weftComm*>(1);

size_t slotOf(const weftComm* comm) {
  uint64_t key = reinterpret_cast<uintptr_t>(comm);
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return key % kRegistrySlots;
}

thread_local std::string threadLastError;

}  // namespace

void registerComm(weftComm* comm) {
  std::lock_guard<std::mutex> lock(registryMutex);
  if (registryCount + 1 >= kRegistrySlots / 2) {
    // Too many live communicators for the table: still usable, just not
    // checked against use after destroy. Warn once.
    static bool warned = false;
    if (!warned)
      WEFT_WARN("more than %zu live communicators; destroyed ones are no longer detected", kRegistrySlots / 2);
    warned = true;
    return;
  }
  for (size_t i = slotOf(comm);; i = (i + 1) % kRegistrySlots) {
    const weftComm* current = registrySlots[i].load(std::memory_order_relaxed);
    if (current == nullptr || current == kTombstone) {
      registrySlots[i].store(comm, std::memory_order_release);
      ++registryCount;
      return;
    }
  }
}

void unregisterComm(weftComm* comm) {
  std::lock_guard<std::mutex> lock(registryMutex);
  for (size_t i = slotOf(comm);; i = (i + 1) % kRegistrySlots) {
    const weftComm* current = registrySlots[i].load(std::memory_order_relaxed);
    if (current == nullptr) return;
    if (current == comm) {
      registrySlots[i].store(kTombstone, std::memory_order_release);
      --registryCount;
      return;
    }
  }
}

bool isLiveComm(const weftComm* comm) {
  if (comm == nullptr) return false;
  for (size_t i = slotOf(comm), probes = 0; probes < kRegistrySlots; i = (i + 1) % kRegistrySlots, ++probes) {
    const weftComm* current = registrySlots[i].load(std::memory_order_acquire);
    if (current == comm) return true;
    if (current == nullptr) return registryCount >= kRegistrySlots / 2 - 1;
  }
  return false;
}

Status checkRegisteredComm(const weftComm* comm) {
  if (comm == nullptr) return WEFT_ERROR(weftInvalidArgument, "comm is NULL");
  if (!isLiveComm(comm))
    return WEFT_ERROR(weftInvalidArgument, "comm %p is not a live communicator (destroyed, aborted or never created)",
                      static_cast<const void*>(comm));
  return Status::ok();
}

Status checkLiveComm(const weftComm* comm) {
  WEFT_CHECK(checkRegisteredComm(comm));
  if (!comm->initDone.load(std::memory_order_acquire))
    return WEFT_ERROR(weftInProgress,
                      "comm %p is still initialising (config.blocking = 0): poll weftCommGetAsyncError until it "
                      "no longer reports weftInProgress",
                      static_cast<const void*>(comm));
  if (!comm->initStatus.isOk())
    return Status(comm->initStatus.code(), format("comm %p did not initialise: %s", static_cast<const void*>(comm),
                                                  comm->initStatus.message().c_str()));
  return Status::ok();
}

Status CommCall::abortingError() { return WEFT_ERROR(weftInvalidUsage, "the communicator is being aborted"); }

CommCall::CommCall(weftComm* comm) : comm_(comm) {
  if (!isLiveComm(comm)) return;
  comm->activeCalls.fetch_add(1, std::memory_order_acq_rel);
  live_ = isLiveComm(comm);
  if (!live_) comm->activeCalls.fetch_sub(1, std::memory_order_acq_rel);
}

CommCall::~CommCall() {
  if (live_) comm_->activeCalls.fetch_sub(1, std::memory_order_acq_rel);
}

weftResult_t setLastError(weftComm* comm, const Status& status) {
  if (status.isOk()) return weftSuccess;
  if (comm != nullptr && isLiveComm(comm)) {
    std::lock_guard<std::mutex> lock(comm->errorMutex);
    comm->lastError = status.message();
  }
  threadLastError = status.message();
  WEFT_INFO(kLogAll, "error %d: %s", status.code(), status.message().c_str());
  return status.code();
}

}  // namespace weft

extern "C" const char* weftGetErrorString(weftResult_t result) {
  switch (result) {
    case weftSuccess: return "no error";
    case weftUnhandledCudaError: return "unhandled CUDA error";
    case weftSystemError: return "system error (a system call failed)";
    case weftInternalError: return "internal error (a bug in weft)";
    case weftInvalidArgument: return "invalid argument";
    case weftInvalidUsage: return "invalid usage";
    case weftRemoteError: return "remote error (a peer failed or disconnected)";
    case weftInProgress: return "operation in progress";
    case weftTimeout: return "timeout waiting for a peer";
    default: return "unknown result code";
  }
}

extern "C" const char* weftGetLastError(weftComm_t comm) {
  if (comm != nullptr && weft::isLiveComm(comm)) {
    std::lock_guard<std::mutex> lock(comm->errorMutex);
    if (!comm->lastError.empty()) {
      thread_local std::string copy;
      copy = comm->lastError;
      return copy.c_str();
    }
  }
  return weft::threadLastError.c_str();
}
