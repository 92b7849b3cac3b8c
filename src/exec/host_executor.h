// The host executor: one worker thread per communicator takes operations from
// the communicator's queue in call order and runs their plans on host memory,
// moving one FIFO slot per step. All channels of an operation, and all
// sends/receives of a group, progress together without blocking, so the order
// in which a group's point-to-point calls were posted cannot deadlock.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "algorithms/plan.h"
#include "core/status.h"
#include "transports/shm/shm_transport.h"

namespace weft {

struct OpDesc {
  Collective collective = Collective::AllReduce;
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;
  weftDataType_t type = weftFloat32;
  weftRedOp_t op = weftSum;
  int root = -1;
  int peer = -1;            // send/recv
  uint64_t opSeq = 0;       // collectives: index among this comm's collectives; p2p: per-peer index
  std::shared_ptr<const Plan> plan;  // collectives
  bool lastInGroup = true;  // the operations up to this one run together
};

struct ExecutorContext {
  int rank = 0;
  int nranks = 1;
  ShmTransport* shm = nullptr;  // null when nranks == 1
  const std::atomic<bool>* abortFlag = nullptr;
  uint64_t timeoutNanos = 0;
  uint64_t spinCount = 2000;
  int maxChannels = 1;
};

class HostExecutor {
 public:
  explicit HostExecutor(const ExecutorContext& context);
  ~HostExecutor();

  // Enqueues a group of operations (the last must have lastInGroup set);
  // returns the sequence number that completes with the group.
  uint64_t submit(const OpDesc* ops, size_t count);
  // Waits until every operation up to seq has completed.
  Status wait(uint64_t seq);
  // True when seq has completed (or the executor has failed).
  bool test(uint64_t seq) const;
  // The first error of asynchronous work, sticky.
  Status asyncError() const;
  uint64_t submitted() const { return submitted_; }
  // Stops the worker; queued work fails with weftInvalidUsage.
  void stop();

 private:
  void workerLoop();
  Status runGroup(std::vector<OpDesc>& group);
  void fail(const Status& status);

  ExecutorContext context_;
  std::vector<std::vector<char>> scratch_;  // one slot per channel, touched once

  mutable std::mutex mutex_;
  std::condition_variable queueChanged_;
  std::condition_variable progressChanged_;
  std::vector<OpDesc> queue_;  // ring
  size_t queueHead_ = 0, queueSize_ = 0;
  uint64_t submitted_ = 0;     // under mutex_
  std::atomic<uint64_t> completed_{0};
  std::atomic<bool> failed_{false};
  std::atomic<int> waiters_{0};
  Status error_;               // under mutex_
  bool stopping_ = false;
  bool workerSleeping_ = false;
  std::thread worker_;
};

}  // namespace weft
