// A group in flight: the operations submitted together (weftGroupStart/End,
// or one call alone) and their run on the token holder's thread. Concurrent
// plans (sends and receives) progress together, each (peer, direction) in
// posting order, so the order in which a group's messages were posted
// cannot deadlock; then the ordered plans (collectives) run one after
// another, all channels of each together.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "exec/op_desc.h"
#include "exec/step_interpreter.h"

namespace weft {

class GroupRun {
 public:
  GroupRun(const ExecutorContext& context, std::vector<std::vector<char>>& scratch)
      : context_(context), scratch_(scratch) {}

  std::vector<OpDesc> ops;

  // Prepares a run of ops (sends to itself are matched and copied here).
  Status start();
  // Runs what can run without blocking; *done when the whole group is.
  Status progress(bool* progressed, bool* done);
  // The peers the current wait depends on.
  const std::vector<int>& blockedOn() const { return blockedOn_; }
  // The connectors on which a peer may still be reading this group's
  // buffers by address (slots posted and not yet released).
  std::vector<SendConnector*> unreadByAddress() const;

 private:
  // One call event on the trace's lane 0, from start to now.
  void traceCall(const OpDesc& op, uint64_t start);
  void preMultiply(OpDesc& op);

  const ExecutorContext& context_;
  std::vector<std::vector<char>>& scratch_;
  std::vector<char> preMultiplied_;  // the scaled input of the PreMulSum running now
  uint64_t collectiveStart_ = 0;     // when the running collective started (traced runs)
  uint64_t groupStart_ = 0;          // when the group started (traced runs: its concurrent plans' start)
  // The concurrent plans' runs, and the operation of each.
  std::vector<ChannelRun> concurrent_;
  std::vector<const OpDesc*> concurrentOp_;
  std::vector<int> earlier_;          // per concurrent run: the run before it on the same peer and direction, or -1
  size_t firstPending_ = 0;           // concurrent runs before this one are done
  bool concurrentStreamed_ = false;   // a concurrent run wrote with streaming stores (fenced once at the end)
  std::vector<ChannelRun> channels_;  // the ordered plan running now, a run per channel
  size_t nextOrdered_ = 0;
  std::vector<int> blockedOn_;
};

}  // namespace weft
