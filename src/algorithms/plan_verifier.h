// The plan verifier runs a plan symbolically: every value carries the block
// it belongs to and how many times each rank's input went into it. It proves
// that the plan terminates with bounded FIFOs (no deadlock), never combines
// pieces of different blocks, consumes each message in the iteration that
// sent it, and leaves every output chunk holding each contribution it should
// exactly once.
#pragma once

#include "algorithms/plan.h"
#include "core/status.h"

namespace weft {

// fifoSlots: capacity of every connector during the run; 1 is the hardest.
// iterations: how many times the plan is repeated back to back, as the
// executor does for messages larger than one slot.
Status verifyPlan(const Plan& plan, int fifoSlots = 1, int iterations = 2);

}  // namespace weft
