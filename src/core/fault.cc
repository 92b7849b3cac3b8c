#include "core/fault.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "core/env.h"
#include "core/logging.h"

namespace weft {
namespace {

struct FaultSpec {
  std::string point;
  int rank = -1;
  bool stop = false;
};

// Read once: the variable is for a process's whole life.
const FaultSpec* faultSpec() {
  static const FaultSpec* spec = []() -> const FaultSpec* {
    if (!envIsSet(EnvParam::FaultInject)) return nullptr;
    std::string text = envString(EnvParam::FaultInject);
    auto* parsed = new FaultSpec;
    size_t colon = text.find(':');
    if (colon != std::string::npos) {
      parsed->stop = text.substr(colon + 1) == "stop";
      text.resize(colon);
    }
    size_t at = text.find('@');
    if (at == std::string::npos) {
      WEFT_WARN("WEFT_FAULT_INJECT=%s lacks @rank; no fault is injected", envString(EnvParam::FaultInject).c_str());
      delete parsed;
      return nullptr;
    }
    parsed->point = text.substr(0, at);
    parsed->rank = atoi(text.c_str() + at + 1);
    return parsed;
  }();
  return spec;
}

}  // namespace

void faultPoint(const char* point, int rank) {
  const FaultSpec* spec = faultSpec();
  if (spec == nullptr || spec->rank != rank || spec->point != point) return;
  WEFT_WARN("rank %d: WEFT_FAULT_INJECT: %s at %s", rank, spec->stop ? "stopping" : "killing this process", point);
  raise(spec->stop ? SIGSTOP : SIGKILL);
}

}  // namespace weft
