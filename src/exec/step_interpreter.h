// The step interpreter: one channel of one operation, run step by step from
// its plan on host memory. Each step moves one slice (a FIFO slot) of the
// block it names; the channel's steps repeat once per slice. A step that
// would block (no slot to receive yet, no free slot to send into) returns
// without running, so a caller can progress many channels and operations
// together on one thread. What a step does is the plan's to say (its op,
// chunks, peers and flags); how a chunk maps to memory is geometry.h's, and
// whether a slot belongs to this call is call_match.h's.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "algorithms/plan.h"
#include "core/status.h"
#include "exec/geometry.h"
#include "exec/op_desc.h"
#include "exec/reduce.h"

namespace weft {

class ChannelRun {
 public:
  // scratch: a slot-sized buffer of the executor's (plans with scratchChunks).
  ChannelRun(const OpDesc& op, const ExecutorContext& context, int channel, char* scratch);

  bool done() const { return finished_; }
  // Large outputs are written with streaming stores: the caller fences once
  // after the operation's last channel finished.
  bool streaming() const { return streaming_; }
  // The connectors this run has published its buffers on by address.
  const std::vector<SendConnector*>& byAddress() const { return byAddress_; }
  // The peer the last unsuccessful attempt waited for.
  int blockedPeer() const { return blockedPeer_; }

  // Runs steps until one would block; sets *progressed if any ran.
  Status progress(bool* progressed);

 private:
  char* pointer(const ChunkRef& ref, size_t offset) const;
  Status takeLateTokens(bool* progressed);
  Status takeToken(const Step& step, bool onlyToken, bool* taken);
  Status tryToken(const Step& step, bool* ran);
  Status tryStep(const Step& step, bool* ran);

  const OpDesc& op_;
  const Plan& plan_;
  const ExecutorContext& context_;
  int channel_;
  char* scratch_;
  std::span<const Step> steps_;
  Geometry geometry_;
  ReduceFn reduce_;
  DivideFn divide_;
  StepWalk walk_;  // which step runs next, in which slice
  int blockedPeer_ = -1;
  bool large_ = false;  // far larger than the caches: inputs are read from memory
  bool streaming_ = false;
  bool zeroCopy_ = false;
  bool crossProcessCopies_ = false;  // by address to processes too (cross-memory attach)
  bool aliased_ = false;             // input and output overlap (in place)
  bool wideSlices_ = false;          // slices of WEFT_CMA_SLICE: every message goes by address
  // The input and the output lie in registered buffers that peers of other
  // processes map (weftCommRegister): they may be published to those too.
  bool inputShared_ = false, outputShared_ = false;
  bool unfencedStreaming_ = false;
  bool finished_ = false;
  int lateAwait_ = -1;                     // the step awaiting a token in the last slice, if any
  bool lateTokenTaken_ = false;            // ... and its token was taken early
  std::vector<SendConnector*> byAddress_;  // connectors this run sent by address on
};

}  // namespace weft
