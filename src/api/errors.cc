#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>

#include "api/comm.h"
#include "core/logging.h"

namespace weft {
namespace {
std::shared_mutex registryMutex;
std::set<const weftComm*>& registry() {
  static std::set<const weftComm*> comms;
  return comms;
}
thread_local std::string threadLastError;
}  // namespace

void registerComm(weftComm* comm) {
  std::unique_lock lock(registryMutex);
  registry().insert(comm);
}

void unregisterComm(weftComm* comm) {
  std::unique_lock lock(registryMutex);
  registry().erase(comm);
}

bool isLiveComm(const weftComm* comm) {
  std::shared_lock lock(registryMutex);
  return registry().count(comm) != 0;
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
