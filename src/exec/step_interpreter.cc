#include "exec/step_interpreter.h"

#include <algorithm>
#include <cstring>

#include "core/clock.h"
#include "core/logging.h"
#include "core/types.h"
#include "exec/call_match.h"
#include "exec/copy.h"

namespace weft {

ChannelRun::ChannelRun(const OpDesc& op, const ExecutorContext& context, int channel, char* scratch)
    : op_(op),
      plan_(*op.plan),
      context_(context),
      channel_(channel),
      scratch_(scratch),
      steps_(plan_.channel(channel)) {
  size_t slotBytes = context.transports ? context.transports->slotBytes() : (1u << 20);
  geometry_ = geometryFor(op, plan_, slotBytes);
  reduce_ = reduceFunction(op.type, op.op);
  divide_ = divideFunction(op.type);
  size_t outputBytes = plan_.outputElements(op.count) * geometry_.typeBytes;
  // In place, the output lines were just read as input and are cached:
  // ordinary stores cost nothing extra there, and streaming would evict them.
  const char* in = static_cast<const char*>(op.send);
  const char* out = static_cast<const char*>(op.recv);
  bool aliased = in != nullptr && out != nullptr && in < out + outputBytes && out < in + outputBytes;
  large_ = outputBytes >= kStreamingMinBytes;
  streaming_ = large_ && !aliased;
  aliased_ = aliased;
  // Which steps may publish by address is the plan's to say (Step::flags).
  zeroCopy_ = context.transports != nullptr && context.sendsByAddress(op.count * geometry_.typeBytes);
  // Between processes only what is copied, never reduced: the receiver's
  // one copy out of the sender's buffer replaces the copy into the slot and
  // the copy out of it, where a reduction would still need both passes.
  crossProcessCopies_ = context.transports != nullptr && !collectiveReduces(plan_.collective) &&
                        plan_.singleCopyAcrossProcesses && context.copiesByAddress(op.count * geometry_.typeBytes);
  // Where every message of this call goes by address (every step that
  // sends may publish, and every peer is read by cross-memory attach), no
  // payload passes through a slot: slices larger than a slot pay fewer
  // hand-offs and page walks. Every rank decides alike (the plans of a copy
  // collective flag their sends alike on every rank, tested), so the
  // receiver's slices stay its sender's.
  if (crossProcessCopies_ && context.cmaSliceBytes > slotBytes && context.transports->everyPeerCopiesByAddress() &&
      plan_.everySendMayPublish()) {
    geometry_ = geometryFor(op, plan_, context.cmaSliceBytes);
    wideSlices_ = true;
  }
  if (zeroCopy_) {
    size_t inputBytes = plan_.inputElements(op.count) * geometry_.typeBytes;
    inputShared_ = context.transports->registered(op.send, inputBytes);
    outputShared_ = context.transports->registered(op.recv, outputBytes);
  }
  for (size_t i = 0; i < steps_.size(); ++i)
    if (steps_[i].op == StepOp::Await && steps_[i].onLastSlice) lateAwait_ = static_cast<int>(i);
  walk_ = StepWalk(steps_.size(), geometry_.iterations);
}

Status ChannelRun::progress(bool* progressed) {
  while (!walk_.done(steps_.size())) {
    bool ran = false;
    WEFT_CHECK(tryStep(steps_[walk_.step], &ran));
    if (!ran) return takeLateTokens(progressed);
    *progressed = true;
    walk_.advance(steps_.data(), steps_.size(), geometry_.iterations);
  }
  // Data sent by address must stay put until every receiver has read it.
  for (SendConnector* to : byAddress_)
    if (!to->drained()) {
      blockedPeer_ = to->peer();
      return Status::ok();
    }
  finished_ = true;
  return Status::ok();
}

char* ChannelRun::pointer(const ChunkRef& ref, size_t offset) const {
  if (ref.buffer == BufferId::Scratch) return scratch_;
  bool input = ref.buffer == BufferId::Input;
  BufferShape shape = input ? plan_.inputShape : plan_.outputShape;
  char* base = input ? const_cast<char*>(static_cast<const char*>(op_.send)) : static_cast<char*>(op_.recv);
  return base + (geometry_.chunkStart(shape, ref.chunk) + offset) * geometry_.typeBytes;
}

// While the channel waits: a token awaited in the last slice is taken as
// soon as it heads its FIFO (its sender puts it before anything else), so
// that ranks that disagree about the call fail instead of waiting on each
// other. Data at the head is left to the steps in order.
Status ChannelRun::takeLateTokens(bool* progressed) {
  if (lateAwait_ < 0 || lateTokenTaken_) return Status::ok();
  bool taken = false;
  WEFT_CHECK(takeToken(steps_[static_cast<size_t>(lateAwait_)], true, &taken));
  lateTokenTaken_ = taken;
  if (taken) *progressed = true;
  return Status::ok();
}

// Receives the token at the head of the step's FIFO, if there is one, and
// checks the call it describes. onlyToken leaves data at the head alone.
Status ChannelRun::takeToken(const Step& step, bool onlyToken, bool* taken) {
  RecvConnector* from = context_.transports->recvFrom(step.recvPeer, channel_);
  const SlotHeader* header = from->tryHeader();
  if (header == nullptr || (onlyToken && header->bytes != 0)) return Status::ok();
  WEFT_CHECK(checkSlotHeader(*header, op_, 0, context_.rank, step.recvPeer));
  from->release();
  *taken = true;
  return Status::ok();
}

// A token: a header-only slot, in one slice of the channel only. It runs
// even where the channel holds no data, on every rank alike.
Status ChannelRun::tryToken(const Step& step, bool* ran) {
  bool takenEarly = lateTokenTaken_ && static_cast<int>(walk_.step) == lateAwait_;
  if (takenEarly || walk_.slice != (step.onLastSlice ? geometry_.iterations - 1 : 0)) {
    *ran = true;
    return Status::ok();
  }
  if (step.op == StepOp::Await) {
    bool taken = false;
    WEFT_CHECK(takeToken(step, false, &taken));
    if (!taken) {
      blockedPeer_ = step.recvPeer;
      return Status::ok();
    }
  } else {
    SendConnector* to = context_.transports->sendTo(step.sendPeer, channel_);
    if (to->trySlot(0) == nullptr) {
      blockedPeer_ = step.sendPeer;
      return Status::ok();
    }
    to->post(slotHeaderFor(op_, 0));
  }
  *ran = true;
  return Status::ok();
}

Status ChannelRun::tryStep(const Step& step, bool* ran) {
  if (stepIsToken(step.op)) return tryToken(step, ran);
  size_t lo = 0, hi = 0;
  geometry_.slice(channel_, walk_.slice, step.block, &lo, &hi);
  // Nothing of this block falls in this slice, on every rank alike; where
  // the plan says so (a message of no elements) one empty slot still goes.
  bool empty = hi <= lo;
  if (empty && !plan_.emptyMessages) {
    *ran = true;
    return Status::ok();
  }
  size_t n = empty ? 0 : hi - lo;
  size_t bytes = n * geometry_.typeBytes;

  // The slot from peer, if it is there (checked against this call).
  RecvConnector* from = nullptr;
  RecvConnector* from2 = nullptr;
  const void* incoming = nullptr;
  const void* incoming2 = nullptr;
  uint64_t inOtherProcess = 0;  // the first slot's data, at this address of its sender's process
  auto arrived = [&](int peer, RecvConnector** connector, const void** payload, bool* there) -> Status {
    *connector = context_.transports->recvFrom(peer, channel_);
    const SlotHeader* header = (*connector)->tryHeader();
    *there = header != nullptr;
    if (!*there) {
      blockedPeer_ = peer;
      return Status::ok();
    }
    WEFT_CHECK(checkSlotHeader(*header, op_, bytes, context_.rank, peer));
    if (header->address != 0 && bytes > 0 && !context_.transports->sameProcess(peer)) {
      // A registered buffer of the sender's, mapped here; else one to copy.
      Result<const void*> mapped = context_.transports->mappedAddress(peer, header->address, bytes);
      WEFT_CHECK(mapped.status());
      if (mapped.value() != nullptr) {
        *payload = mapped.value();
        return Status::ok();
      }
      // Not a buffer the sender registers (any longer): only cross-memory
      // attach can read it, and without it the sender withdrew the
      // registration while this call still used the buffer, or it failed
      // (a failure reported on this node is the cause to name) and let it go.
      if (!context_.transports->copiesByAddress(peer)) {
        Status cause;
        if (context_.transports->peerFailed(&cause)) return cause;
        return WEFT_ERROR(weftInvalidUsage,
                          "rank %d: rank %d lent a buffer at 0x%llx that it no longer registers: was it deregistered "
                          "(weftCommDeregister) or freed while a call still used it? Host calls run asynchronously; "
                          "wait for them (weftCommSynchronize) first",
                          context_.rank, peer, static_cast<unsigned long long>(header->address));
      }
      if (payload != &incoming)
        return WEFT_ERROR(weftInternalError, "rank %d: rank %d sent a fan-in operand by cross-memory attach",
                          context_.rank, peer);
      inOtherProcess = header->address;
      return Status::ok();
    }
    *payload = (*connector)->payload();
    return Status::ok();
  };
  bool there = true;
  if (stepReceives(step.op)) WEFT_CHECK(arrived(step.recvPeer, &from, &incoming, &there));
  // Fan-in: the second child's slot must be there too.
  if (there && stepFansIn(step)) WEFT_CHECK(arrived(step.recvPeer2, &from2, &incoming2, &there));
  if (!there) return Status::ok();
  SendConnector* to = nullptr;
  void* outgoing = nullptr;
  // By address: the receiver reads this rank's buffer, where the plan
  // allows it (a partial sum of RecvReduceSend goes to the step's dst).
  // Between processes: a registered buffer that the peer maps, or a copy
  // collective's message that the peer reads by cross-memory attach.
  auto shared = [&](const ChunkRef& ref) {
    return (ref.buffer == BufferId::Input && inputShared_) || (ref.buffer == BufferId::Output && outputShared_);
  };
  bool byAddress = false;
  if (stepMayPublish(step.flags, aliased_) && stepSends(step.op)) {
    const ChunkRef& published = step.op == StepOp::Send ? step.src : step.dst;
    byAddress = (zeroCopy_ && context_.transports->sameProcess(step.sendPeer)) ||
                (crossProcessCopies_ && context_.transports->copiesByAddress(step.sendPeer)) ||
                (shared(published) && context_.transports->mapsRegistered(step.sendPeer));
  }
  if (stepSends(step.op)) {
    to = context_.transports->sendTo(step.sendPeer, channel_);
    outgoing = to->trySlot(byAddress ? 0 : bytes);
    if (outgoing == nullptr) {
      blockedPeer_ = step.sendPeer;
      return Status::ok();
    }
  }
  char* dst = step.dst.buffer != BufferId::None && !empty ? pointer(step.dst, lo) : nullptr;
  const char* src = step.src.buffer != BufferId::None && !empty ? pointer(step.src, lo) : nullptr;
  if (from2 != nullptr && !empty) {
    // src ⊕ first, in the channel's scratch slot; the step then goes on as
    // if that were its operand and the second slot what it received.
    reduce_(scratch_, src, incoming, n);
    src = scratch_;
    incoming = incoming2;
  }
  bool divide = step.final && op_.op == weftAvg && plan_.nranks > 1;
  if (inOtherProcess != 0) {
    // One copy out of the sender's process: straight into the destination
    // where the step only copies it there, else into scratch as a slot.
    bool direct = dst != nullptr && ((step.op == StepOp::Recv && !divide) || step.op == StepOp::RecvSend);
    char* into = direct ? dst : scratch_;
    if (into == nullptr || (!direct && wideSlices_))
      return WEFT_ERROR(weftInternalError, "rank %d: no buffer to read rank %d's data into", context_.rank,
                        step.recvPeer);
    WEFT_CHECK(context_.transports->copyFromPeer(step.recvPeer, into, inOtherProcess, bytes));
    incoming = into;
  }
  // Writes to the output go through writeOut: streamed when the output is
  // large. Reduced values are produced in cache (the outgoing slot or the
  // scratch slot) and streamed from there.
  bool toOutput = step.dst.buffer == BufferId::Output && streaming_;
  auto writeOut = [&](const void* from) {
    if (from == dst) return;  // already there (read from another process)
    if (toOutput) {
      copyStreaming(dst, from, bytes);
      unfencedStreaming_ = true;
    } else if (dst != from) {
      memcpy(dst, from, bytes);
    }
  };
  // dst = a ⊕ b, divided for the final step of an average; produced in
  // scratch when the output is streamed, straight into dst otherwise.
  auto reduceToOutput = [&](const void* a, const void* b) {
    if (toOutput && !divide) {  // one pass: reduced a chunk at a time in cache, streamed out
      reduceStreaming(reduce_, geometry_.typeBytes, dst, nullptr, a, b, n);
      unfencedStreaming_ = true;
      return;
    }
    char* result = toOutput ? scratch_ : dst;
    reduce_(result, a, b, n);
    if (divide) divide_(result, n, plan_.nranks);
    if (result != dst) writeOut(result);
  };
  const void* address = nullptr;  // what a by-address send points the receiver at
  uint64_t traceStart = context_.tracer ? monotonicNanos() : 0;
  switch (empty ? StepOp::Notify : step.op) {  // an empty slot moves no data (and its buffers may be NULL)
    case StepOp::Send:
      if (byAddress)
        address = src;
      else if (large_)
        copyPrefetching(outgoing, src, bytes);  // src is in memory, not in cache
      else
        memcpy(outgoing, src, bytes);
      break;
    case StepOp::Recv:
      if (divide) {  // a reduced value received whole, written for the last time here
        if (incoming != scratch_) memcpy(scratch_, incoming, bytes);
        divide_(scratch_, n, plan_.nranks);
        writeOut(scratch_);
      } else {
        writeOut(incoming);
      }
      break;
    case StepOp::RecvSend:
      writeOut(incoming);
      if (byAddress)
        address = dst;
      else
        memcpy(outgoing, incoming, bytes);
      break;
    case StepOp::RecvReduceSend:
      if (byAddress) {
        char* partial = dst;
        reduce_(partial, src, incoming, n);
        address = partial;
      } else {
        reduce_(outgoing, src, incoming, n);
      }
      break;
    case StepOp::RecvReduceCopy: reduceToOutput(src, incoming); break;
    case StepOp::RecvReduceCopySend:
      if (byAddress) {
        reduceToOutput(src, incoming);
        address = dst;
      } else if (toOutput && !divide) {
        // Into the outgoing slot and the output in one pass.
        reduceStreaming(reduce_, geometry_.typeBytes, dst, outgoing, src, incoming, n);
        unfencedStreaming_ = true;
      } else {
        // Reduced into the outgoing slot (in cache), copied out from there.
        reduce_(outgoing, src, incoming, n);
        if (divide) divide_(outgoing, n, plan_.nranks);
        writeOut(outgoing);
      }
      break;
    case StepOp::Copy: writeOut(src); break;
    case StepOp::LocalReduce: reduceToOutput(src, pointer(step.src2, lo)); break;
    case StepOp::Notify:
    case StepOp::Await: break;  // tryToken
  }
  if (from != nullptr) from->release();
  if (from2 != nullptr) from2->release();
  if (to != nullptr) {
    SlotHeader header = slotHeaderFor(op_, bytes);
    if (byAddress) {
      // Streaming stores are not ordered by the release that publishes
      // the slot, and a block written by an earlier step (two-shot's
      // reduced block, sent in its all-gather) may be published now:
      // fence whatever was streamed since the last fence.
      if (unfencedStreaming_) {
        streamingFence();
        unfencedStreaming_ = false;
      }
      header.address = reinterpret_cast<uint64_t>(address);
      if (std::find(byAddress_.begin(), byAddress_.end(), to) == byAddress_.end()) byAddress_.push_back(to);
    }
    to->post(header);
  }
  if (context_.tracer)
    context_.tracer->event(
        1 + channel_, stepOpName(step.op), traceStart, monotonicNanos(),
        format("\"bytes\": %zu, \"block\": %d, \"slice\": %zu, \"recvPeer\": %d, "
               "\"sendPeer\": %d%s",
               bytes, step.block, walk_.slice, step.recvPeer, step.sendPeer, byAddress ? ", \"byAddress\": true" : ""));
  *ran = true;
  return Status::ok();
}

}  // namespace weft
