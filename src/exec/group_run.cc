#include "exec/group_run.h"

#include <algorithm>
#include <cstring>

#include "core/clock.h"
#include "core/logging.h"
#include "core/types.h"
#include "exec/call_match.h"
#include "exec/copy.h"
#include "exec/reduce.h"

namespace weft {

Status GroupRun::start() {
  concurrent_.clear();
  concurrentOp_.clear();
  if (context_.tracer) groupStart_ = monotonicNanos();
  channels_.clear();
  nextOrdered_ = 0;
  concurrentStreamed_ = false;
  // Messages to itself pair up in posting order and are plain copies.
  std::vector<const OpDesc*> selfSends, selfRecvs;
  for (const OpDesc& op : ops) {
    if (!op.plan->concurrent) continue;
    int peer = concurrentPeer(*op.plan);
    bool sends = concurrentSends(*op.plan);
    if (peer != context_.rank) {
      concurrent_.emplace_back(op, context_, 0, nullptr);
      concurrentOp_.push_back(&op);
      continue;
    }
    (sends ? selfSends : selfRecvs).push_back(&op);
  }
  std::vector<SelfCopy> copies;
  WEFT_CHECK(pairSelfMessages(selfSends, selfRecvs, context_.rank, &copies));
  for (const SelfCopy& copy : copies) memmove(copy.dst, copy.src, copy.bytes);
  // Messages to one peer in one direction go in posting order: each run
  // waits for the one posted before it on the same (peer, direction).
  std::vector<int> lastOf(2 * static_cast<size_t>(context_.nranks), -1);
  earlier_.assign(concurrent_.size(), -1);
  for (size_t i = 0; i < concurrent_.size(); ++i) {
    const Plan& plan = *concurrentOp_[i]->plan;
    int& last = lastOf[2 * static_cast<size_t>(concurrentPeer(plan)) + (concurrentSends(plan) ? 1 : 0)];
    earlier_[i] = last;
    last = static_cast<int>(i);
  }
  firstPending_ = 0;
  return Status::ok();
}

Status GroupRun::progress(bool* progressed, bool* done) {
  blockedOn_.clear();
  *done = false;
  bool concurrentDone = true;
  while (firstPending_ < concurrent_.size() && concurrent_[firstPending_].done()) ++firstPending_;
  for (size_t i = firstPending_; i < concurrent_.size(); ++i) {
    ChannelRun& run = concurrent_[i];
    if (run.done()) continue;
    if (earlier_[i] >= 0 && !concurrent_[static_cast<size_t>(earlier_[i])].done()) {
      concurrentDone = false;
      continue;
    }
    WEFT_CHECK(run.progress(progressed));
    concurrentStreamed_ = concurrentStreamed_ || run.streaming();
    if (run.done() && context_.tracer) traceCall(*concurrentOp_[i], groupStart_);
    if (!run.done()) {
      concurrentDone = false;
      blockedOn_.push_back(run.blockedPeer());
    }
  }
  if (!concurrentDone) return Status::ok();
  if (concurrentStreamed_) {
    streamingFence();
    concurrentStreamed_ = false;
  }
  for (;;) {
    if (channels_.empty()) {
      while (nextOrdered_ < ops.size() && ops[nextOrdered_].plan->concurrent) ++nextOrdered_;
      if (nextOrdered_ == ops.size()) {
        *done = true;
        return Status::ok();
      }
      OpDesc& op = ops[nextOrdered_++];
      if (context_.tracer) collectiveStart_ = monotonicNanos();
      if (op.preMulSum) preMultiply(op);
      for (int c = 0; c < op.plan->nChannels; ++c) channels_.emplace_back(op, context_, c, scratch_[c].data());
    }
    bool allDone = true;
    for (ChannelRun& run : channels_) {
      WEFT_CHECK(run.progress(progressed));
      if (!run.done()) {
        allDone = false;
        blockedOn_.push_back(run.blockedPeer());
      }
    }
    if (!allDone) return Status::ok();
    if (channels_[0].streaming()) streamingFence();
    if (context_.tracer) traceCall(ops[nextOrdered_ - 1], collectiveStart_);
    channels_.clear();
  }
}

std::vector<SendConnector*> GroupRun::unreadByAddress() const {
  std::vector<SendConnector*> unread;
  auto add = [&](SendConnector* to) {
    if (to != nullptr && std::find(unread.begin(), unread.end(), to) == unread.end() && !to->drained())
      unread.push_back(to);
  };
  for (const ChannelRun& run : concurrent_)
    for (SendConnector* to : run.byAddress()) add(to);
  for (const ChannelRun& run : channels_)
    for (SendConnector* to : run.byAddress()) add(to);
  return unread;
}

void GroupRun::traceCall(const OpDesc& op, uint64_t start) {
  if (op.plan->concurrent) {
    context_.tracer->event(0, collectiveName(op.collective), start, monotonicNanos(),
                           format("\"message\": %llu, \"count\": %zu, \"type\": \"%s\", \"peer\": %d",
                                  static_cast<unsigned long long>(op.opSeq), op.count, typeName(op.type), op.peer));
    return;
  }
  context_.tracer->event(
      0, collectiveName(op.collective), start, monotonicNanos(),
      format("\"call\": %llu, \"count\": %zu, \"type\": \"%s\", \"op\": \"%s\", \"root\": %d, "
             "\"algorithm\": \"%s\", \"channels\": %d",
             static_cast<unsigned long long>(op.opSeq), op.count, typeName(op.type), headerOpName(wireOp(op)), op.root,
             algorithmName(op.plan->algorithm), op.plan->nChannels));
}

// A PreMulSum's scaling, as the operation starts (so that an input another
// operation before it writes is read after that one, and a scalar read by
// address is read now): the scaled input goes to a buffer of the group's,
// which becomes the operation's input. The plan then sums.
void GroupRun::preMultiply(OpDesc& op) {
  size_t count = op.plan->inputElements(op.count);
  size_t bytes = count * typeSize(op.type);
  if (bytes == 0) return;
  uint64_t scalar = op.preMulScalar;
  if (op.preMulScalarAt != nullptr) memcpy(&scalar, op.preMulScalarAt, typeSize(op.type));
  preMultiplied_.resize(bytes);
  scaleFunction(op.type)(preMultiplied_.data(), op.send, count, &scalar);
  op.send = preMultiplied_.data();
}

}  // namespace weft
