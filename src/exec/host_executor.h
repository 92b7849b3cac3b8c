// The host executor: one worker thread per communicator takes operations from
// the communicator's queue in call order and runs their plans on host memory,
// moving one FIFO slot per step. All channels of an operation, and all
// sends/receives of a group, progress together without blocking, so the order
// in which a group's point-to-point calls were posted cannot deadlock.
#pragma once

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/status.h"
#include "core/waiter.h"
#include "exec/call_ref.h"
#include "exec/executor.h"
#include "exec/op_desc.h"

namespace weft {

class GroupRun;

// Whoever holds the progress token runs the queue: the worker thread, or a
// caller whose small group found the executor idle (it then runs its own
// call at once instead of paying a thread hand-off, ~1 us plus a futex wake),
// or a caller blocked in wait(). Large groups always go to the worker, so a
// big call still returns at once and overlaps with the caller's compute.
class HostExecutor final : public Executor {
 public:
  explicit HostExecutor(const ExecutorContext& context);
  ~HostExecutor() override;

  // Enqueues a group of operations (the last must have lastInGroup set);
  // returns the sequence number that completes with the group.
  uint64_t submit(const OpDesc* ops, size_t count) override;
  // Waits until every operation up to seq has completed.
  Status wait(uint64_t seq) override;
  // True when seq has completed (or the executor has failed).
  bool test(uint64_t seq) const override;
  // The first error of asynchronous work, sticky.
  Status asyncError() const override;
  uint64_t submitted() const override;
  // Stops the worker; queued work fails with weftInvalidUsage.
  void stop() override;
  // The call of the last completed group, and of the group running now
  // (kNoCall when idle); readable from any thread.
  CallRef lastCompleted() const override { return lastCompleted_.load(std::memory_order_acquire); }
  CallRef inProgress() const override { return inProgress_.load(std::memory_order_acquire); }

  // Groups up to this many bytes may run on the calling thread. Handing a
  // call to the worker costs a wake-up, and on oversubscribed cores a
  // context switch per rank: 4 processes on 2 cores ran 128 KiB all-reduces
  // at 4.6-5.2 GB/s through the worker and 10.4-10.7 GB/s inline. The price
  // is overlap: a call up to this size usually completes before it returns
  // (~100 us at 1 MiB); larger calls (gradient buckets) still return at once.
  static constexpr size_t kInlineMaxBytes = 1024 * 1024;
  // How long a caller keeps driving its own small group while peers are not
  // there yet before the worker takes it over. Peers on an oversubscribed
  // machine may wait a whole scheduler timeslice (milliseconds) for a core;
  // handing off sooner only adds thread wake-ups on cores already short.
  static constexpr uint64_t kInlinePatienceNanos = 2000000;

 private:
  void workerLoop();
  bool tryAcquireToken();
  void releaseToken();
  // Runs queued groups while holding the token. Returns when the queue is
  // empty, when completed_ reaches untilSeq (0: no target), when the next
  // group is large and smallOnly is set, or when nothing moved for
  // patienceNanos (0 waits as long as WEFT_TIMEOUT allows). The worker
  // (yieldToSubmitter) also returns between groups while a caller waits for
  // queue space, so that the caller runs the queue instead.
  void drive(bool smallOnly, uint64_t patienceNanos, uint64_t untilSeq, bool yieldToSubmitter = false);
  // Starts the group just made active; false when it must not run (an
  // earlier failure, or its start failed) and was completed at once.
  bool startActive();
  bool popGroup(bool smallOnly);
  void growQueue(size_t capacity);  // under mutex_; keeps the queued order
  bool workPending() const;         // under mutex_
  void finishGroup();
  void fail(const Status& status);
  void failActive(const Status& status);
  // Whether status is the failure another rank of this node reported.
  bool reportedOnThisNode(const Status& status) const;
  void wakeWorker();

  ExecutorContext context_;
  std::vector<std::vector<char>> scratch_;  // one slot per channel, touched once
  std::unique_ptr<GroupRun> active_;        // owned by the token holder
  std::atomic<bool> activeValid_{false};

  mutable std::mutex mutex_;
  std::condition_variable workerWake_;
  std::condition_variable progressChanged_;
  std::vector<OpDesc> queue_;  // ring
  size_t queueHead_ = 0;
  std::atomic<size_t> queueSize_{0};     // changed under mutex_, read without it by the fast path
  std::atomic<size_t> queuedGroups_{0};  // complete groups in the queue (changed under mutex_)
  std::atomic<uint64_t> submitted_{0};   // incremented under mutex_ or by the token holder
  std::atomic<uint64_t> completed_{0};
  std::atomic<CallRef> lastCompleted_{kNoCall};
  std::atomic<CallRef> inProgress_{kNoCall};
  std::atomic<bool> token_{false};
  std::atomic<bool> failed_{false};
  SpinBudget spin_;  // the token holder's
  std::atomic<int> waiters_{0};
  Status error_;                      // under mutex_
  std::atomic<int> spaceWaiters_{0};  // submitters waiting for queue space (changed under mutex_)
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace weft
