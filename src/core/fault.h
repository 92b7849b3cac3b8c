// Fault injection for the fault-injection suite (tests/faults/): named
// places in weft where a chosen rank kills or stops itself, so that a test
// can make a rank die exactly between two phases of init or of a call.
// WEFT_FAULT_INJECT=point@rank[:stop] (point names are listed in
// docs/reliability.md); unset, a fault point costs one load of a flag.
#pragma once

#include <string>

namespace weft {

struct FaultSpec {
  std::string point;
  int rank = -1;
  bool stop = false;
};

// Parses point@rank[:stop|:kill]; false with the reason for anything else.
bool parseFaultSpec(const std::string& text, FaultSpec* spec, std::string* why);

// Kills (SIGKILL) or stops (SIGSTOP) this process when WEFT_FAULT_INJECT
// names this point and this rank.
void faultPoint(const char* point, int rank);

}  // namespace weft
