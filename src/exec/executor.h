// What the communicator asks of its executor, whichever runs its work: the
// host executor (host memory) or the device executor (a GPU, or the
// emulated device). Operations are submitted a group at a time and complete
// in order; sequence numbers count groups.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "exec/call_ref.h"
#include "exec/op_desc.h"

namespace weft {

class Executor {
 public:
  virtual ~Executor() = default;
  // Enqueues a group of operations (the last has lastInGroup set); returns
  // the sequence number that completes with the group.
  virtual uint64_t submit(const OpDesc* ops, size_t count) = 0;
  // Waits until every group up to seq has completed.
  virtual Status wait(uint64_t seq) = 0;
  // True when seq has completed (or the executor has failed).
  virtual bool test(uint64_t seq) const = 0;
  // The first error of asynchronous work, sticky.
  virtual Status asyncError() const = 0;
  virtual uint64_t submitted() const = 0;
  // Stops; queued work fails.
  virtual void stop() = 0;
  // The call of the last completed group, and of the group running now.
  virtual CallRef lastCompleted() const = 0;
  virtual CallRef inProgress() const = 0;
};

}  // namespace weft
