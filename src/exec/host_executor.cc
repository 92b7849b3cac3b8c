#include "exec/host_executor.h"

#include <algorithm>
#include <cstring>
#include <pthread.h>

#include <chrono>

#include "core/clock.h"
#include "core/logging.h"
#include "core/types.h"
#include "core/waiter.h"
#include "exec/geometry.h"
#include "exec/group_run.h"

namespace weft {

HostExecutor::HostExecutor(const ExecutorContext& context)
    : context_(context), spin_(context.spinCount, context.adaptiveSpin) {
  size_t slotBytes = context.transports ? context.transports->slotBytes() : 0;
  scratch_.resize(static_cast<size_t>(context.maxChannels));
  for (auto& buffer : scratch_) buffer.assign(std::max<size_t>(slotBytes, 64), 0);
  active_ = std::make_unique<GroupRun>(context_, scratch_);
  queue_.resize(1024);
  worker_ = std::thread([this] { workerLoop(); });
  if (context_.bindWorker) {
    int rc = pthread_setaffinity_np(worker_.native_handle(), sizeof(context_.workerCpus), &context_.workerCpus);
    if (rc != 0) WEFT_INFO(kLogInit, "rank %d: could not bind the worker thread: %s", context_.rank, strerror(rc));
  }
}

HostExecutor::~HostExecutor() { stop(); }

void HostExecutor::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  workerWake_.notify_all();
  if (worker_.joinable()) worker_.join();
  progressChanged_.notify_all();
  // A caller thread may still be driving (weftCommAbort from another
  // thread): once the abort flag is seen its wait ends within a check
  // period; the executor is not freed under it.
  while (token_.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

uint64_t HostExecutor::submitted() const { return submitted_.load(std::memory_order_acquire); }

bool HostExecutor::workPending() const { return queuedGroups_ > 0 || activeValid_; }

bool HostExecutor::tryAcquireToken() {
  bool expected = false;
  return token_.compare_exchange_strong(expected, true, std::memory_order_acquire);
}

void HostExecutor::releaseToken() {
  token_.store(false, std::memory_order_seq_cst);
  // seq_cst pairs with the worker's predicate: either it sees the token free,
  // or we see the work it would wait for and wake it.
  if (workPending()) wakeWorker();
  if (waiters_.load() > 0 || spaceWaiters_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    progressChanged_.notify_all();
  }
}

void HostExecutor::wakeWorker() {
  { std::lock_guard<std::mutex> lock(mutex_); }
  workerWake_.notify_one();
}

uint64_t HostExecutor::submit(const OpDesc* ops, size_t count) {
  size_t bytes = 0;
  bool background = false;
  for (size_t i = 0; i < count; ++i) {
    bytes += callBytes(ops[i]);
    background = background || ops[i].background;
  }
  bool small = bytes <= kInlineMaxBytes && !background;
  bool direct = false;
  uint64_t seq;
  if (small && tryAcquireToken()) {
    // Holding the token, nobody else pops the queue or touches active_: if
    // nothing is queued or in flight, this group becomes the active one
    // without a lock or a pass through the queue.
    if (queueSize_.load(std::memory_order_acquire) == 0 && !activeValid_) {
      active_->ops.assign(ops, ops + count);
      activeValid_ = true;
      seq = submitted_.fetch_add(count, std::memory_order_acq_rel) + count;
      direct = true;
    } else {
      releaseToken();
    }
  }
  if (!direct) {
    std::unique_lock<std::mutex> lock(mutex_);
    // The worker takes whole groups only, so a group goes in whole: a full
    // queue holds the caller until the groups before it drained (never
    // dropping work), and a group larger than the queue grows it. While the
    // queue is full, the caller runs it until half of it (and at least room
    // for this group) is free, rather than sleep while the worker does. One
    // thread then runs the calls, where a worker freeing one place at a time
    // would wake the caller once per call (on oversubscribed cores, a
    // context switch each). A worker that holds the queue gives it up after
    // its current group (drive's yieldToSubmitter).
    if (count > queue_.size()) growQueue(count);
    while (queue_.size() - queueSize_ < count && !stopping_) {
      size_t free = queue_.size() - queueSize_;
      uint64_t target = submitted_.load() - queueSize_.load() + std::max(count - free, queueSize_.load() / 2);
      lock.unlock();
      if (tryAcquireToken()) {
        drive(false, 0, target);
        releaseToken();
        lock.lock();
        continue;
      }
      workerWake_.notify_one();
      lock.lock();
      ++spaceWaiters_;
      progressChanged_.wait(lock, [&] { return queue_.size() - queueSize_ >= count || stopping_ || !token_.load(); });
      --spaceWaiters_;
    }
    if (queue_.size() - queueSize_ < count) growQueue(queueSize_ + count);  // stopping: queued to fail
    for (size_t i = 0; i < count; ++i) {
      queue_[(queueHead_ + queueSize_) % queue_.size()] = ops[i];
      ++queueSize_;
      ++submitted_;
      if (ops[i].lastInGroup) ++queuedGroups_;
    }
    seq = submitted_;
  }
  if (direct) startActive();
  if (direct || (small && tryAcquireToken())) {
    // Run it here if the peers are there too; hand it to the worker after a
    // few microseconds without progress.
    drive(true, kInlinePatienceNanos, 0);
    releaseToken();
  } else {
    wakeWorker();
  }
  return seq;
}

void HostExecutor::growQueue(size_t capacity) {
  size_t size = queue_.size();
  while (size < capacity) size *= 2;
  std::vector<OpDesc> grown(size);
  for (size_t i = 0; i < queueSize_; ++i) grown[i] = queue_[(queueHead_ + i) % queue_.size()];
  queue_.swap(grown);
  queueHead_ = 0;
}

bool HostExecutor::popGroup(bool smallOnly) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (queuedGroups_ == 0) return false;
  size_t length = 0, bytes = 0;
  while (true) {
    const OpDesc& op = queue_[(queueHead_ + length) % queue_.size()];
    bytes += callBytes(op);
    ++length;
    if (op.lastInGroup) break;
  }
  if (smallOnly && bytes > kInlineMaxBytes) return false;
  active_->ops.clear();
  for (size_t i = 0; i < length; ++i) {
    OpDesc& op = queue_[queueHead_];
    active_->ops.push_back(op);
    queueHead_ = (queueHead_ + 1) % queue_.size();
  }
  queueSize_ -= length;
  --queuedGroups_;
  activeValid_ = true;
  if (spaceWaiters_ > 0) progressChanged_.notify_all();
  return true;
}

// The call a group is known by: its last collective, else its last message.
static CallRef groupCall(const std::vector<OpDesc>& ops) {
  if (ops.empty()) return kNoCall;
  const OpDesc* named = &ops.back();
  for (const OpDesc& op : ops)
    if (!op.plan->concurrent) named = &op;
  return makeCallRef(named->collective, named->peer, named->opSeq);
}

void HostExecutor::finishGroup() {
  CallRef call = inProgress_.exchange(kNoCall, std::memory_order_acq_rel);  // set by startActive
  if (!failed_.load()) {
    lastCompleted_.store(call, std::memory_order_release);
    if (context_.transports != nullptr) context_.transports->publishProgress(context_.rank, call);
  }
  size_t n = active_->ops.size();
  active_->ops.clear();
  activeValid_ = false;
  completed_.fetch_add(n, std::memory_order_release);
  if (waiters_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    progressChanged_.notify_all();
  }
}

bool HostExecutor::startActive() {
  inProgress_.store(groupCall(active_->ops), std::memory_order_release);
  Status status = failed_.load() ? Status::ok() : active_->start();
  if (status.isOk() && !failed_.load()) return true;
  if (!status.isOk()) fail(status);
  finishGroup();  // after an error nothing more runs; it completes at once
  return false;
}

bool HostExecutor::reportedOnThisNode(const Status& status) const {
  Status reported;
  return context_.transports != nullptr && context_.transports->peerFailed(&reported) &&
         reported.message() == status.message();
}

void HostExecutor::drive(bool smallOnly, uint64_t patienceNanos, uint64_t untilSeq, bool yieldToSubmitter) {
  Waiter waiter(&spin_, context_.timeoutNanos, [this]() -> Status {
    if (context_.abortFlag != nullptr && context_.abortFlag->load())
      return WEFT_ERROR(weftInvalidUsage, "rank %d: communicator aborted", context_.rank);
    if (context_.transports != nullptr) {
      Status peerStatus;
      if (context_.transports->peerFailed(&peerStatus)) return peerStatus;
      // Only the peers this wait depends on must be alive: a peer that
      // finished its part and exited is no failure.
      for (int peer : active_->blockedOn()) {
        Status alive = context_.transports->checkPeerAlive(peer);
        if (alive.isOk()) continue;
        // A broken connection to another node: that neighbour may have left
        // only because a third rank died, so ask who is still there.
        if (context_.transports->remote(peer) && context_.explainTimeout) alive = context_.explainTimeout(alive);
        return alive;
      }
    }
    return Status::ok();
  });
  uint64_t blockedSince = 0;
  uint32_t idlePolls = 0;  // the clock is read every 16th idle poll: a read costs a poll's time
  for (;;) {
    if (untilSeq != 0 && completed_.load(std::memory_order_acquire) >= untilSeq) return;
    if (!activeValid_) {
      if (yieldToSubmitter && spaceWaiters_.load(std::memory_order_acquire) > 0) return;
      if (!popGroup(smallOnly)) return;
      if (!startActive()) continue;
    }
    bool progressed = false, done = false;
    Status status = active_->progress(&progressed, &done);
    if (!status.isOk()) {
      // A connection to another node broke: the peer may have left only
      // because a third rank died first, so ask who is still there. A
      // failure already reported on this node (a step that found it, as a
      // cross-memory read does) names its cause: nothing to ask.
      if (status.code() == weftRemoteError && context_.explainTimeout && !reportedOnThisNode(status))
        status = context_.explainTimeout(status);
      failActive(status);
      continue;
    }
    if (done) {
      finishGroup();
      waiter.reset();
      blockedSince = 0;
      continue;
    }
    if (progressed) {
      waiter.reset();
      blockedSince = 0;
      continue;
    }
    if (patienceNanos != 0 && (++idlePolls & 15) == 0) {
      uint64_t now = monotonicNanos();
      if (blockedSince == 0)
        blockedSince = now;
      else if (now - blockedSince > patienceNanos)
        return;
    }
    status = waiter.pause(active_->ops.empty() ? "operation" : collectiveName(active_->ops[0].collective));
    if (!status.isOk()) {
      // A peer may hand over its last slot and leave between the poll above
      // and the check: look once more before calling its departure a failure.
      bool late = false;
      Status again = active_->progress(&late, &done);
      if (again.isOk() && (late || done)) {
        if (done) finishGroup();
        waiter.reset();
        continue;
      }
      if (status.code() == weftTimeout && context_.explainTimeout) status = context_.explainTimeout(status);
      failActive(status);
    }
  }
}

// A failed group's call must not return while a peer thread may still be
// reading its buffers by address: the caller would free them under the
// reader. Every peer either releases the slots it was given or stops (it
// sees this rank's failure at its next check and fails too); a peer that
// does neither within the timeout is left, with a warning. A peer in
// another process is not waited for: it reads this rank's memory through
// the kernel (cross-memory attach, which fails on memory no longer there)
// or through its own mapping of a registered buffer, neither of which can
// fault this process, and a stopped peer would hold the error back.
void HostExecutor::failActive(const Status& status) {
  fail(status);
  std::vector<SendConnector*> unread = active_->unreadByAddress();
  uint64_t deadline = monotonicNanos() + context_.timeoutNanos;
  while (!unread.empty()) {
    std::erase_if(unread, [&](SendConnector* to) {
      return to->drained() || !context_.transports->sameProcess(to->peer()) ||
             context_.transports->readsNoMore(to->peer());
    });
    if (unread.empty()) break;
    if (context_.timeoutNanos != 0 && monotonicNanos() > deadline) {
      WEFT_WARN(
          "rank %d: rank %d neither read nor gave up the buffer it was lent by address; the failed call "
          "returns anyway",
          context_.rank, unread.front()->peer());
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  finishGroup();
}

void HostExecutor::workerLoop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // A caller waiting for queue space runs the queue itself (submit).
      workerWake_.wait(lock, [&] { return stopping_ || (workPending() && !token_.load() && spaceWaiters_ == 0); });
      if (stopping_ && !workPending()) return;
      if (stopping_ && error_.isOk()) {
        error_ = WEFT_ERROR(weftInvalidUsage, "rank %d: communicator destroyed with work still queued", context_.rank);
        failed_ = true;
      }
    }
    if (!tryAcquireToken()) continue;
    drive(false, 0, 0, true);
    releaseToken();
  }
}

void HostExecutor::fail(const Status& status) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_.isOk()) error_ = status;
  }
  failed_ = true;
  // The node's first failure reaches every rank (the first report wins), so
  // a rank waiting on this one learns the cause, not just that it left.
  if (context_.transports != nullptr) {
    context_.transports->reportFatal(context_.rank, status.code(), status.message());
    context_.transports->markStopped();
  }
  WEFT_WARN("%s", status.message().c_str());
}

Status HostExecutor::wait(uint64_t seq) {
  while (completed_.load(std::memory_order_acquire) < seq) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) {
        if (error_.isOk()) error_ = WEFT_ERROR(weftInvalidUsage, "rank %d: communicator aborted", context_.rank);
        failed_ = true;
        return error_;
      }
    }
    // Waiting anyway: run the queue here rather than sleep while the worker
    // does it (saves a wake-up per synchronize).
    if (tryAcquireToken()) {
      drive(false, 0, seq);
      releaseToken();
      continue;
    }
    for (int spin = 0; spin < 200 && completed_.load(std::memory_order_acquire) < seq && token_.load(); ++spin)
      cpuRelax();
    std::unique_lock<std::mutex> lock(mutex_);
    ++waiters_;
    progressChanged_.wait_for(lock, std::chrono::milliseconds(10),
                              [&] { return completed_.load() >= seq || !token_.load() || stopping_; });
    --waiters_;
  }
  return asyncError();
}

bool HostExecutor::test(uint64_t seq) const { return completed_.load(std::memory_order_acquire) >= seq; }

Status HostExecutor::asyncError() const {
  if (!failed_.load()) return Status::ok();
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

}  // namespace weft
