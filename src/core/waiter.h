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

// How many polls a wait spins before it yields, kept across a rank's waits
// (one at a time: the executor's token holder's). Spinning pays only while
// the peer runs on another core. Where it shares this core (more ranks than
// cores, or the scheduler put two ranks on one core for a while), the peer
// runs only once this thread yields, and every poll spun first is time taken
// from it. So, when adaptive: a wait whose yields found another thread
// wanting this core (a yield that took longer than an idle one) halves the
// budget, down to kMinSpin; a wait that found none doubles it, up to the
// most. An idle yield costs ~0.6 µs here, one that ran another yielding
// thread ~3 µs.
struct SpinBudget {
  static constexpr uint64_t kMinSpin = 10;
  static constexpr uint64_t kContendedYieldNanos = 1500;
  uint64_t most = 200;
  uint64_t current = 200;
  bool adaptive = false;

  SpinBudget() = default;
  SpinBudget(uint64_t spinCount, bool adapt) : most(spinCount), current(spinCount), adaptive(adapt) {}
  // After a wait that yielded: whether another thread wanted this core.
  void waited(bool contended) {
    if (!adaptive) return;
    uint64_t least = most < kMinSpin ? most : kMinSpin;
    if (contended)
      current = current / 2 > least ? current / 2 : least;
    else
      current = current * 2 < most ? current * 2 : most;
  }
};

class Waiter {
 public:
  // check() is called every few hundred microseconds of waiting; a non-ok
  // Status ends the wait. timeoutNanos of 0 means no deadline.
  Waiter(SpinBudget* budget, uint64_t timeoutNanos, std::function<Status()> check)
      : budget_(budget), spinCount_(budget->current), timeoutNanos_(timeoutNanos), check_(std::move(check)) {}

  // The wait is over (something moved): the budget learns from it.
  void reset() {
    if (iterations_ > spinCount_) budget_->waited(contended_);
    iterations_ = 0;
    contended_ = false;
    spinCount_ = budget_->current;
  }

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
      uint64_t before = budget_->adaptive ? monotonicNanos() : 0;
      sched_yield();
      if (budget_->adaptive && monotonicNanos() - before > SpinBudget::kContendedYieldNanos) contended_ = true;
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
  SpinBudget* budget_;
  uint64_t spinCount_;
  bool contended_ = false;
  uint64_t timeoutNanos_;
  std::function<Status()> check_;
  uint64_t iterations_ = 0;
  uint64_t start_ = 0;
  uint64_t lastCheck_ = 0;
};

}  // namespace weft
