// The plan verifier runs a plan symbolically: every value carries the block
// it belongs to and how many times each rank's input went into it. It proves
// that the plan terminates with bounded FIFOs (no deadlock), never combines
// pieces of different blocks, consumes each message in the iteration that
// sent it, and leaves every slice of every output chunk holding each
// contribution it should exactly once. Memory is modelled as the executor
// lays it out: input and output apart or, in place, one buffer; one scratch
// slot per channel, of the capacity the plan declares. Memory a step lends
// by address must not be written before its receiver has read it, which up
// to 128 ranks is checked by vector clocks, so that it holds for every
// timing and not only the order this run took.
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
// inPlace: input and output are one buffer (input chunk j is output chunk
// j; for the own-block shapes, the rank's block of the larger buffer), as
// NCCL's in-place calls lay them out; reading input that a write has
// replaced fails. Whether a message goes by address is the executor's choice
// at run time, so every step that may publish is checked as if it did: the
// memory it lends must not be written until its receiver has taken it.
// plans[r] is rank r's program; all of one call.
Status verifyPlans(const PlanSet& plans, int fifoSlots = kMinFifoSlots, int iterations = 2, bool inPlace = false);
// Out of place and in place, with the smallest FIFOs and deep ones: what
// the tuner proves under WEFT_VERIFY_PLANS.
Status verifyPlansEveryWay(const PlanSet& plans);

}  // namespace weft
