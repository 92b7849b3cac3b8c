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

// fifoSlots: capacity of every connector during the run. A step that both
// receives and sends needs a free slot while it holds the received one, so
// rings need 2 slots; the executor's FIFOs have at least that many.
// iterations: how many times the plan is repeated back to back, as the
// executor does for messages larger than one slot.
constexpr int kMinFifoSlots = 2;
// plans[r] is rank r's program; all of one call.
Status verifyPlans(const PlanSet& plans, int fifoSlots = kMinFifoSlots, int iterations = 2);

}  // namespace weft
