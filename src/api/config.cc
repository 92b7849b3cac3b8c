#include "api/config.h"

#include <cstddef>

#include "core/env.h"

namespace weft {

Result<CommOptions> resolveConfig(const weftConfig_t* config) {
  CommOptions options;
  options.allowSharedGpu = envInt(EnvParam::AllowSharedGpu) != 0;
  options.timeoutNanos = static_cast<uint64_t>(envInt(EnvParam::Timeout)) * 1000000000ull;
  if (config == nullptr) return options;
  // The fields up to allowSharedGpu are version 0.1's; a larger size is a
  // later header, whose extra fields this library does not know.
  constexpr size_t kKnown = offsetof(weftConfig_t, allowSharedGpu) + sizeof(int);
  if (config->magic != WEFT_CONFIG_MAGIC || config->size < kKnown)
    return WEFT_ERROR(weftInvalidArgument,
                      "config (magic 0x%x, size %zu) was not set up with WEFT_CONFIG_INITIALIZER; declare it as "
                      "weftConfig_t config = WEFT_CONFIG_INITIALIZER;",
                      config->magic, config->size);
  if (config->cudaDevice != WEFT_CONFIG_UNDEF_INT) {
    if (config->cudaDevice < -1)
      return WEFT_ERROR(weftInvalidArgument,
                        "config.cudaDevice=%d: expected a CUDA device ordinal, or -1 for host memory",
                        config->cudaDevice);
    options.cudaDevice = config->cudaDevice;
  }
  if (config->blocking != WEFT_CONFIG_UNDEF_INT) {
    if (config->blocking != 0 && config->blocking != 1)
      return WEFT_ERROR(weftInvalidArgument, "config.blocking=%d: expected 0 or 1", config->blocking);
    options.blocking = config->blocking == 1;
  }
  if (config->maxChannels != WEFT_CONFIG_UNDEF_INT) {
    if (config->maxChannels < 1 || config->maxChannels > 16)
      return WEFT_ERROR(weftInvalidArgument, "config.maxChannels=%d: expected 1..16", config->maxChannels);
    options.maxChannels = config->maxChannels;
  }
  if (config->allowSharedGpu != WEFT_CONFIG_UNDEF_INT) {
    if (config->allowSharedGpu != 0 && config->allowSharedGpu != 1)
      return WEFT_ERROR(weftInvalidArgument, "config.allowSharedGpu=%d: expected 0 or 1", config->allowSharedGpu);
    options.allowSharedGpu = config->allowSharedGpu == 1;
  }
  // timeoutMs joined the struct after allowSharedGpu; a config built against the
  // header without it is shorter, and the field is not read.
  if (config->size >= offsetof(weftConfig_t, timeoutMs) + sizeof(int) && config->timeoutMs != WEFT_CONFIG_UNDEF_INT) {
    if (config->timeoutMs < 1)
      return WEFT_ERROR(weftInvalidArgument, "config.timeoutMs=%d: expected a positive number of milliseconds",
                        config->timeoutMs);
    options.timeoutNanos = static_cast<uint64_t>(config->timeoutMs) * 1000000ull;
  }
  return options;
}

Status checkGpuSharing(const std::vector<std::string>& gpuOfRank, const std::vector<int>& cudaDeviceOfRank,
                       bool allow) {
  if (allow) return Status::ok();
  for (size_t r = 0; r < gpuOfRank.size(); ++r)
    for (size_t q = r + 1; q < gpuOfRank.size() && !gpuOfRank[r].empty(); ++q)
      if (gpuOfRank[q] == gpuOfRank[r])
        return WEFT_ERROR(weftInvalidUsage,
                          "ranks %zu and %zu both use GPU %s (cudaDevice %d and %d); one GPU per rank, or set "
                          "WEFT_ALLOW_SHARED_GPU=1 (or config.allowSharedGpu = 1) to share it, for testing",
                          r, q, gpuOfRank[r].c_str(), cudaDeviceOfRank[r], cudaDeviceOfRank[q]);
  return Status::ok();
}

}  // namespace weft
