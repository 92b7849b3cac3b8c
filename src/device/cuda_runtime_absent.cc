// A build without CUDA: GPU communicators run only on the emulated device.
#include "core/logging.h"
#include "device/runtime.h"

namespace weft::device {

Result<std::shared_ptr<Runtime>> cudaRuntime(int ordinal) {
  return WEFT_ERROR(weftInvalidUsage,
                    "cudaDevice=%d: this build of weft has no CUDA; set WEFT_DEVICE=emulated for the emulated device",
                    ordinal);
}

}  // namespace weft::device
