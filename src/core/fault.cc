#include "core/fault.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/env.h"
#include "core/logging.h"

namespace weft {

bool parseFaultSpec(const std::string& value, FaultSpec* spec, std::string* why) {
  std::string text = value;
  *spec = FaultSpec{};
  size_t colon = text.find(':');
  if (colon != std::string::npos) {
    std::string how = text.substr(colon + 1);
    if (how != "stop" && how != "kill") {
      *why = "the part after ':' must be stop or kill, not '" + how + "'";
      return false;
    }
    spec->stop = how == "stop";
    text.resize(colon);
  }
  size_t at = text.find('@');
  if (at == std::string::npos || at == 0) {
    *why = "expected point@rank[:stop]";
    return false;
  }
  const char* digits = text.c_str() + at + 1;
  char* end = nullptr;
  errno = 0;
  long rank = strtol(digits, &end, 10);
  if (end == digits || *end != '\0' || errno != 0 || rank < 0 || rank > (1 << 30)) {
    *why = "the rank after '@' must be a number from 0, not '" + std::string(digits) + "'";
    return false;
  }
  spec->point = text.substr(0, at);
  spec->rank = static_cast<int>(rank);
  return true;
}

namespace {

// Read once: the variable is for a process's whole life.
const FaultSpec* faultSpec() {
  static const FaultSpec* spec = []() -> const FaultSpec* {
    if (!envIsSet(EnvParam::FaultInject)) return nullptr;
    auto* parsed = new FaultSpec;
    std::string why;
    if (!parseFaultSpec(envString(EnvParam::FaultInject), parsed, &why)) {
      WEFT_WARN("WEFT_FAULT_INJECT=%s: %s; no fault is injected", envString(EnvParam::FaultInject).c_str(),
                why.c_str());
      delete parsed;
      return nullptr;
    }
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
