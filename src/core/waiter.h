// How a rank waits for a peer: spin first (a hand-off between two running
// cores costs ~0.1 µs, a futex wake 30-60 µs), then yield the core so that
// more ranks than cores still progress, then sleep in short naps. Every so
// often it checks the abort flags, the peers' liveness and the deadline, so
// no wait can hang.
#pragma once

#include <sched.h>
#include <time.h>

#include <cstdint>
#include <functional>

#include "core/clock.h"
#include "core/status.h"

namespace weft {

class Waiter {
 public:
  // check() is called every few hundred microseconds of waiting; a non-ok
  // Status ends the wait. timeoutNanos of 0 means no deadline.
  Waiter(uint64_t spinCount, uint64_t timeoutNanos, std::function<Status()> check)
      : spinCount_(spinCount), timeoutNanos_(timeoutNanos), check_(std::move(check)) {}

  void reset() { iterations_ = 0; }

  // One unit of waiting after a poll that found nothing to do.
  Status pause(const char* what) {
    ++iterations_;
    if (iterations_ <= spinCount_) {
      cpuRelax();
      return Status::ok();
    }
    if (iterations_ == spinCount_ + 1) start_ = monotonicNanos();
    uint64_t idle = iterations_ - spinCount_;
    if (idle < 20000) {
      sched_yield();
    } else {
      timespec nap{0, 50000};  // long waits: 50 µs naps
      nanosleep(&nap, nullptr);
    }
    if ((idle & 63) == 0) {
      uint64_t now = monotonicNanos();
      if (now - lastCheck_ > 200000) {
        lastCheck_ = now;
        WEFT_CHECK(check_());
        if (timeoutNanos_ != 0 && now - start_ > timeoutNanos_)
          return WEFT_ERROR(weftTimeout, "%s: no progress for %.3g s (WEFT_TIMEOUT, or the config's timeoutMs)", what,
                            static_cast<double>(timeoutNanos_) * 1e-9);
      }
    }
    return Status::ok();
  }

 private:
  uint64_t spinCount_;
  uint64_t timeoutNanos_;
  std::function<Status()> check_;
  uint64_t iterations_ = 0;
  uint64_t start_ = 0;
  uint64_t lastCheck_ = 0;
};

}  // namespace weft
