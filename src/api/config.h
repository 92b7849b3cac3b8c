// weftConfig_t: checking what the caller passed, and the rules that need
// every rank's answer (several ranks on one GPU).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "weft/weft.h"

namespace weft {

struct CommOptions {
  int cudaDevice = -1;  // -1: host communicator
  bool blocking = true;
  int maxChannels = 0;  // 0: no cap beyond the tuner's
  bool allowSharedGpu = false;
  uint64_t timeoutNanos = 0;  // 0: WEFT_TIMEOUT
};

// NULL is all defaults. A config not made with WEFT_CONFIG_INITIALIZER, or a
// field out of range, is weftInvalidArgument naming the field.
Result<CommOptions> resolveConfig(const weftConfig_t* config);

// gpuOfRank[r]: the node and PCI bus id of rank r's GPU ("" for host
// ranks). Two ranks on one GPU are an error naming both, unless allowed.
Status checkGpuSharing(const std::vector<std::string>& gpuOfRank, const std::vector<int>& cudaDeviceOfRank, bool allow);

}  // namespace weft
