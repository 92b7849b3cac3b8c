#include "exec/host_executor.h"

#include <algorithm>
#include <cstring>
#include <pthread.h>

#include <chrono>

#include "core/clock.h"
#include "core/logging.h"
#include "core/types.h"
#include "core/waiter.h"
#include "exec/copy.h"
#include "exec/reduce.h"

namespace weft {
namespace {

size_t ceilDiv(size_t a, size_t b) { return b == 0 ? 0 : (a + b - 1) / b; }

// The slot header's op for a PreMulSum (a sum after scaling): told apart
// from a plain sum, so that ranks that disagree fail.
constexpr int kPreMulSumRedop = 0x40;
int wireOp(const OpDesc& op) { return op.preMulSum ? kPreMulSumRedop : op.op; }
const char* headerOpName(int op) {
  return op == kPreMulSumRedop ? "premulsum" : redOpName(static_cast<weftRedOp_t>(op));
}

SlotHeader headerFor(const OpDesc& op, size_t bytes) {
  SlotHeader header{};
  header.magic = kSlotMagic;
  header.collective = static_cast<uint8_t>(op.collective == Collective::Recv ? Collective::Send : op.collective);
  header.datatype = static_cast<uint8_t>(op.type);
  header.redop = static_cast<uint8_t>(wireOp(op));
  header.algorithm = op.plan ? static_cast<uint8_t>(op.plan->algorithm) : 0;
  header.root = op.root;
  header.bytes = static_cast<uint32_t>(bytes);
  header.count = op.count;
  header.opSeq = op.opSeq;
  header.address = 0;
  return header;
}

std::string describeCall(Collective collective, size_t count, int type, int op, int root, uint64_t opSeq) {
  if (collective == Collective::Send || collective == Collective::Recv)
    return format("%s(count=%zu, %s) message #%llu between the two", collectiveName(collective), count,
                  typeName(static_cast<weftDataType_t>(type)), static_cast<unsigned long long>(opSeq));
  bool reduces = collectiveReduces(collective);
  return format("%s(count=%zu, %s%s%s, root=%d) call #%llu", collectiveName(collective), count,
                typeName(static_cast<weftDataType_t>(type)), reduces ? ", " : "", reduces ? headerOpName(op) : "", root,
                static_cast<unsigned long long>(opSeq));
}

// What a slot from peer must look like for this rank's operation.
Status checkHeader(const SlotHeader& got, const OpDesc& op, size_t bytes, int rank, int peer) {
  SlotHeader want = headerFor(op, bytes);
  bool same = got.magic == want.magic && got.collective == want.collective && got.datatype == want.datatype &&
              got.count == want.count && got.opSeq == want.opSeq && got.bytes == want.bytes;
  if (collectiveReduces(op.collective)) same = same && got.redop == want.redop;
  if (collectiveHasRoot(op.collective)) same = same && got.root == want.root;
  if (op.plan) same = same && got.algorithm == want.algorithm;
  if (same) return Status::ok();
  if (got.magic != kSlotMagic) return WEFT_ERROR(weftInternalError, "rank %d: corrupt slot from rank %d", rank, peer);
  return WEFT_ERROR(
      weftInvalidUsage,
      "rank %d: mismatched calls: rank %d is in %s but this rank is in %s; every "
      "rank must make the same collective calls in the same order (and matching "
      "send/recv counts)",
      rank, peer,
      describeCall(static_cast<Collective>(got.collective), got.count, got.datatype, got.redop, got.root, got.opSeq)
          .c_str(),
      describeCall(op.collective, op.count, op.type, want.redop, op.root, op.opSeq).c_str());
}

// How a collective's buffers are cut: nBlocks blocks of blockCount elements,
// each split across channels, each channel's share walked one slot at a time.
struct Geometry {
  size_t count = 0;
  size_t typeBytes = 1;
  size_t blockCount = 0;
  size_t channelCount = 0;
  size_t sliceCount = 0;
  size_t iterations = 0;
  bool clampToCount = false;  // all-reduce: the last blocks may be short

  size_t blockLength(int block) const {
    if (!clampToCount) return blockCount;
    size_t start = static_cast<size_t>(block) * blockCount;
    return start >= count ? 0 : std::min(blockCount, count - start);
  }
};

Geometry geometryFor(const OpDesc& op, const Plan& plan, size_t slotBytes) {
  Geometry g;
  g.count = op.count;
  g.typeBytes = typeSize(op.type);
  // Element sizes are powers of two: masks and shifts instead of divisions
  // (this runs once per call, and small calls are counted in nanoseconds).
  int typeShift = __builtin_ctzll(g.typeBytes);
  size_t align = std::max<size_t>(1, 64 >> typeShift);
  auto alignUp = [align](size_t value) { return (value + align - 1) & ~(align - 1); };
  switch (plan.geometry) {
    case BlockGeometry::Whole:
    case BlockGeometry::PerRank: g.blockCount = op.count; break;  // reduce-scatter recvcount, all-gather sendcount
    case BlockGeometry::Split:
      g.blockCount = alignUp(ceilDiv(op.count, static_cast<size_t>(plan.nBlocks)));
      g.clampToCount = true;
      break;
  }
  g.channelCount =
      plan.nChannels == 1 ? alignUp(g.blockCount) : alignUp(ceilDiv(g.blockCount, static_cast<size_t>(plan.nChannels)));
  g.sliceCount = slotBytes >> typeShift;
  g.iterations = g.channelCount <= g.sliceCount ? (g.channelCount > 0 ? 1 : 0) : ceilDiv(g.channelCount, g.sliceCount);
  return g;
}

class CollectiveRun {
 public:
  CollectiveRun(const OpDesc& op, const ExecutorContext& context, int channel, char* scratch)
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
    size_t outputBytes = op.count * geometry_.typeBytes;
    if (plan_.geometry == BlockGeometry::PerRank && plan_.outputShape == BufferShape::AllBlocks)
      outputBytes *= static_cast<size_t>(plan_.nBlocks);
    // In place, the output lines were just read as input and are cached:
    // ordinary stores cost nothing extra there, and streaming would evict them.
    const char* in = static_cast<const char*>(op.send);
    const char* out = static_cast<const char*>(op.recv);
    bool aliased = in != nullptr && out != nullptr && in < out + outputBytes && out < in + outputBytes;
    large_ = outputBytes >= kStreamingMinBytes;
    streaming_ = large_ && !aliased;
    // Which steps may publish by address is the plan's to say (Step::flags).
    zeroCopy_ = context.transports != nullptr && context.sendsByAddress(op.count * geometry_.typeBytes);
    for (size_t i = 0; i < steps_.size(); ++i)
      if (steps_[i].op == StepOp::Await && steps_[i].onLastSlice) lateAwait_ = static_cast<int>(i);
  }

  bool done() const { return finished_; }
  bool streaming() const { return streaming_; }
  // The connectors this run has published its buffers on by address.
  const std::vector<SendConnector*>& byAddress() const { return byAddress_; }
  // The peer the last unsuccessful attempt waited for.
  int blockedPeer() const { return blockedPeer_; }

  // Runs steps until one would block; sets *progressed if any ran.
  Status progress(bool* progressed) {
    while (iteration_ < geometry_.iterations && !steps_.empty()) {
      bool ran = false;
      WEFT_CHECK(tryStep(steps_[stepIndex_], &ran));
      if (!ran) return takeLateTokens(progressed);
      *progressed = true;
      if (++stepIndex_ == steps_.size()) {
        stepIndex_ = 0;
        ++iteration_;
      }
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

 private:
  char* pointer(const ChunkRef& ref, size_t offset) const {
    if (ref.buffer == BufferId::Scratch) return scratch_;
    bool input = ref.buffer == BufferId::Input;
    BufferShape shape = input ? plan_.inputShape : plan_.outputShape;
    char* base = input ? const_cast<char*>(static_cast<const char*>(op_.send)) : static_cast<char*>(op_.recv);
    size_t block = shape == BufferShape::AllBlocks ? static_cast<size_t>(ref.chunk) : 0;
    return base + (block * geometry_.blockCount + offset) * geometry_.typeBytes;
  }

  // While the channel waits: a token awaited in the last slice is taken as
  // soon as it heads its FIFO (its sender puts it before anything else), so
  // that ranks that disagree about the call fail instead of waiting on each
  // other. Data at the head is left to the steps in order.
  Status takeLateTokens(bool* progressed) {
    if (lateAwait_ < 0 || lateTokenTaken_) return Status::ok();
    bool taken = false;
    WEFT_CHECK(takeToken(steps_[static_cast<size_t>(lateAwait_)], true, &taken));
    lateTokenTaken_ = taken;
    if (taken) *progressed = true;
    return Status::ok();
  }

  // Receives the token at the head of the step's FIFO, if there is one, and
  // checks the call it describes. onlyToken leaves data at the head alone.
  Status takeToken(const Step& step, bool onlyToken, bool* taken) {
    RecvConnector* from = context_.transports->recvFrom(step.recvPeer, channel_);
    const SlotHeader* header = from->tryHeader();
    if (header == nullptr || (onlyToken && header->bytes != 0)) return Status::ok();
    WEFT_CHECK(checkHeader(*header, op_, 0, context_.rank, step.recvPeer));
    from->release();
    *taken = true;
    return Status::ok();
  }

  // A token: a header-only slot, in one slice of the channel only. It runs
  // even where the channel holds no data, on every rank alike.
  Status tryToken(const Step& step, bool* ran) {
    bool takenEarly = lateTokenTaken_ && static_cast<int>(stepIndex_) == lateAwait_;
    if (takenEarly || iteration_ != (step.onLastSlice ? geometry_.iterations - 1 : 0)) {
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
      to->post(headerFor(op_, 0));
    }
    *ran = true;
    return Status::ok();
  }

  Status tryStep(const Step& step, bool* ran) {
    if (stepIsToken(step.op)) return tryToken(step, ran);
    int block = step.block;
    size_t lo = static_cast<size_t>(channel_) * geometry_.channelCount + iteration_ * geometry_.sliceCount;
    size_t hi = std::min({lo + geometry_.sliceCount, static_cast<size_t>(channel_ + 1) * geometry_.channelCount,
                          geometry_.blockLength(block)});
    if (hi <= lo) {  // nothing of this block falls in this slice, on every rank alike
      *ran = true;
      return Status::ok();
    }
    size_t n = hi - lo;
    size_t bytes = n * geometry_.typeBytes;

    RecvConnector* from = nullptr;
    const void* incoming = nullptr;
    if (stepReceives(step.op)) {
      from = context_.transports->recvFrom(step.recvPeer, channel_);
      const SlotHeader* header = from->tryHeader();
      if (header == nullptr) {
        blockedPeer_ = step.recvPeer;
        return Status::ok();
      }
      WEFT_CHECK(checkHeader(*header, op_, bytes, context_.rank, step.recvPeer));
      incoming = from->payload();
    }
    SendConnector* to = nullptr;
    void* outgoing = nullptr;
    // By address: the receiver reads this rank's buffer, where the plan
    // allows it (a partial sum of RecvReduceSend goes to the step's dst).
    bool byAddress =
        (step.flags & kMayPublishAddress) != 0 && zeroCopy_ && context_.transports->sameProcess(step.sendPeer);
    if (stepSends(step.op)) {
      to = context_.transports->sendTo(step.sendPeer, channel_);
      outgoing = to->trySlot(byAddress ? 0 : bytes);
      if (outgoing == nullptr) {
        blockedPeer_ = step.sendPeer;
        return Status::ok();
      }
    }
    char* dst = step.dst.buffer != BufferId::None ? pointer(step.dst, lo) : nullptr;
    const char* src = step.src.buffer != BufferId::None ? pointer(step.src, lo) : nullptr;
    bool divide = step.final && op_.op == weftAvg && plan_.nranks > 1;
    // Writes to the output go through writeOut: streamed when the output is
    // large. Reduced values are produced in cache (the outgoing slot or the
    // scratch slot) and streamed from there.
    bool toOutput = step.dst.buffer == BufferId::Output && streaming_;
    auto writeOut = [&](const void* from) {
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
    switch (step.op) {
      case StepOp::Send:
        if (byAddress)
          address = src;
        else if (large_)
          copyPrefetching(outgoing, src, bytes);  // src is in memory, not in cache
        else
          memcpy(outgoing, src, bytes);
        break;
      case StepOp::Recv: writeOut(incoming); break;
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
    if (to != nullptr) {
      SlotHeader header = headerFor(op_, bytes);
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
      context_.tracer->event(1 + channel_, stepOpName(step.op), traceStart, monotonicNanos(),
                             format("\"bytes\": %zu, \"block\": %d, \"slice\": %zu, \"recvPeer\": %d, "
                                    "\"sendPeer\": %d%s",
                                    bytes, step.block, iteration_, step.recvPeer, step.sendPeer,
                                    byAddress ? ", \"byAddress\": true" : ""));
    *ran = true;
    return Status::ok();
  }

  const OpDesc& op_;
  const Plan& plan_;
  const ExecutorContext& context_;
  int channel_;
  char* scratch_;
  std::span<const Step> steps_;
  Geometry geometry_;
  ReduceFn reduce_;
  DivideFn divide_;
  size_t iteration_ = 0;
  size_t stepIndex_ = 0;
  int blockedPeer_ = -1;
  bool large_ = false;  // far larger than the caches: inputs are read from memory
  bool streaming_ = false;
  bool zeroCopy_ = false;
  bool unfencedStreaming_ = false;
  bool finished_ = false;
  int lateAwait_ = -1;                     // the step awaiting a token in the last slice, if any
  bool lateTokenTaken_ = false;            // ... and its token was taken early
  std::vector<SendConnector*> byAddress_;  // connectors this run sent by address on
};

// One send or receive, moved a slot at a time on channel 0 to/from its peer.
class P2pRun {
 public:
  P2pRun(const OpDesc& op, const ExecutorContext& context) : op_(op), context_(context) {
    total_ = op.count * typeSize(op.type);
    byAddress_ =
        op.collective == Collective::Send && context.sendsByAddress(total_) && context.transports->sameProcess(op.peer);
  }
  bool done() const { return finished_; }
  int peer() const { return op_.peer; }
  bool isSend() const { return op_.collective == Collective::Send; }
  // The connector this send has published its buffer on by address, if any.
  SendConnector* byAddress() const {
    return byAddress_ && started_ ? context_.transports->sendTo(op_.peer, 0) : nullptr;
  }

  Status progress(bool* progressed) {
    while (!(offset_ >= total_ && started_)) {
      size_t slotBytes = context_.transports->slotBytes();
      size_t bytes = std::min(slotBytes, total_ - offset_);
      if (isSend()) {
        SendConnector* to = context_.transports->sendTo(op_.peer, 0);
        void* slot = to->trySlot(byAddress_ ? 0 : bytes);
        if (slot == nullptr) return Status::ok();
        SlotHeader header = headerFor(op_, bytes);
        const char* source = bytes > 0 ? static_cast<const char*>(op_.send) + offset_ : nullptr;
        if (byAddress_)
          header.address = reinterpret_cast<uint64_t>(source);
        else if (bytes > 0)
          memcpy(slot, source, bytes);  // a count-0 buffer may be NULL
        to->post(header);
      } else {
        RecvConnector* from = context_.transports->recvFrom(op_.peer, 0);
        const SlotHeader* header = from->tryHeader();
        if (header == nullptr) return Status::ok();
        WEFT_CHECK(checkHeader(*header, op_, bytes, context_.rank, op_.peer));
        if (bytes > 0) memcpy(static_cast<char*>(op_.recv) + offset_, from->payload(), bytes);
        from->release();
      }
      offset_ += bytes;
      started_ = true;
      *progressed = true;
    }
    // The receiver copies straight from the send buffer: it must have
    // finished before this send completes.
    if (byAddress_ && !context_.transports->sendTo(op_.peer, 0)->drained()) return Status::ok();
    finished_ = true;
    return Status::ok();
  }

 private:
  const OpDesc& op_;
  const ExecutorContext& context_;
  size_t total_ = 0;
  size_t offset_ = 0;
  bool started_ = false;  // a zero-byte message still sends one (empty) slot
  bool byAddress_ = false;
  bool finished_ = false;
};

}  // namespace

// The operations of one group in flight: sends/receives progress together
// first, then each collective in order with all its channels together.
class GroupRun {
 public:
  GroupRun(const ExecutorContext& context, std::vector<std::vector<char>>& scratch)
      : context_(context), scratch_(scratch) {}

  std::vector<OpDesc> ops;

  Status start() {
    p2p_.clear();
    channels_.clear();
    nextCollective_ = 0;
    // Self send/recv pairs match in posting order and are plain copies.
    std::vector<const OpDesc*> selfSends, selfRecvs;
    for (const OpDesc& op : ops) {
      if (op.collective != Collective::Send && op.collective != Collective::Recv) continue;
      if (op.peer != context_.rank) {
        p2p_.emplace_back(op, context_);
        continue;
      }
      (op.collective == Collective::Send ? selfSends : selfRecvs).push_back(&op);
    }
    if (selfSends.size() != selfRecvs.size())
      return WEFT_ERROR(weftInvalidUsage, "rank %d: a group has %zu sends to itself but %zu receives from itself",
                        context_.rank, selfSends.size(), selfRecvs.size());
    for (size_t i = 0; i < selfSends.size(); ++i) {
      size_t sendBytes = selfSends[i]->count * typeSize(selfSends[i]->type);
      size_t recvBytes = selfRecvs[i]->count * typeSize(selfRecvs[i]->type);
      if (sendBytes != recvBytes)
        return WEFT_ERROR(weftInvalidUsage, "rank %d: send to itself of %zu bytes matched a receive of %zu bytes",
                          context_.rank, sendBytes, recvBytes);
      if (sendBytes > 0) memmove(selfRecvs[i]->recv, selfSends[i]->send, sendBytes);
    }
    // Messages to one peer in one direction go in posting order: each run
    // waits for the one posted before it on the same (peer, direction).
    std::vector<int> lastOf(2 * static_cast<size_t>(context_.nranks), -1);
    earlier_.assign(p2p_.size(), -1);
    for (size_t i = 0; i < p2p_.size(); ++i) {
      int& last = lastOf[2 * static_cast<size_t>(p2p_[i].peer()) + (p2p_[i].isSend() ? 1 : 0)];
      earlier_[i] = last;
      last = static_cast<int>(i);
    }
    firstPending_ = 0;
    return Status::ok();
  }

  Status progress(bool* progressed, bool* done) {
    blockedOn_.clear();
    *done = false;
    // Point-to-point operations progress together; several to the same peer
    // and direction go in posting order.
    bool p2pDone = true;
    while (firstPending_ < p2p_.size() && p2p_[firstPending_].done()) ++firstPending_;
    for (size_t i = firstPending_; i < p2p_.size(); ++i) {
      P2pRun& run = p2p_[i];
      if (run.done()) continue;
      if (earlier_[i] >= 0 && !p2p_[static_cast<size_t>(earlier_[i])].done()) {
        p2pDone = false;
        continue;
      }
      WEFT_CHECK(run.progress(progressed));
      if (!run.done()) {
        p2pDone = false;
        blockedOn_.push_back(run.peer());
      }
    }
    if (!p2pDone) return Status::ok();
    for (;;) {
      if (channels_.empty()) {
        while (nextCollective_ < ops.size() && (ops[nextCollective_].collective == Collective::Send ||
                                                ops[nextCollective_].collective == Collective::Recv))
          ++nextCollective_;
        if (nextCollective_ == ops.size()) {
          *done = true;
          return Status::ok();
        }
        OpDesc& op = ops[nextCollective_++];
        if (context_.tracer) collectiveStart_ = monotonicNanos();
        if (op.preMulSum) preMultiply(op);
        for (int c = 0; c < op.plan->nChannels; ++c) channels_.emplace_back(op, context_, c, scratch_[c].data());
      }
      bool allDone = true;
      for (CollectiveRun& run : channels_) {
        WEFT_CHECK(run.progress(progressed));
        if (!run.done()) {
          allDone = false;
          blockedOn_.push_back(run.blockedPeer());
        }
      }
      if (!allDone) return Status::ok();
      if (channels_[0].streaming()) streamingFence();
      if (context_.tracer) traceCollective(ops[nextCollective_ - 1]);
      channels_.clear();
    }
  }

  // The peers the current wait depends on.
  const std::vector<int>& blockedOn() const { return blockedOn_; }

  // The connectors on which a peer may still be reading this group's
  // buffers by address (slots posted and not yet released).
  std::vector<SendConnector*> unreadByAddress() const {
    std::vector<SendConnector*> unread;
    auto add = [&](SendConnector* to) {
      if (to != nullptr && std::find(unread.begin(), unread.end(), to) == unread.end() && !to->drained())
        unread.push_back(to);
    };
    for (const P2pRun& run : p2p_) add(run.byAddress());
    for (const CollectiveRun& run : channels_)
      for (SendConnector* to : run.byAddress()) add(to);
    return unread;
  }

 private:
  void traceCollective(const OpDesc& op) {
    context_.tracer->event(
        0, collectiveName(op.collective), collectiveStart_, monotonicNanos(),
        format("\"call\": %llu, \"count\": %zu, \"type\": \"%s\", \"op\": \"%s\", \"root\": %d, "
               "\"algorithm\": \"%s\", \"channels\": %d",
               static_cast<unsigned long long>(op.opSeq), op.count, typeName(op.type), headerOpName(wireOp(op)),
               op.root, algorithmName(op.plan->algorithm), op.plan->nChannels));
  }

  // A PreMulSum's scaling, as the operation starts (so that an input another
  // operation before it writes is read after that one, and a scalar read by
  // address is read now): the scaled input goes to a buffer of the group's,
  // which becomes the operation's input. The plan then sums.
  void preMultiply(OpDesc& op) {
    size_t count = op.count;
    if (op.collective == Collective::ReduceScatter) count *= static_cast<size_t>(context_.nranks);
    size_t bytes = count * typeSize(op.type);
    if (bytes == 0) return;
    uint64_t scalar = op.preMulScalar;
    if (op.preMulScalarAt != nullptr) memcpy(&scalar, op.preMulScalarAt, typeSize(op.type));
    preMultiplied_.resize(bytes);
    scaleFunction(op.type)(preMultiplied_.data(), op.send, count, &scalar);
    op.send = preMultiplied_.data();
  }

  const ExecutorContext& context_;
  std::vector<std::vector<char>>& scratch_;
  std::vector<char> preMultiplied_;  // the scaled input of the PreMulSum running now
  uint64_t collectiveStart_ = 0;     // when the running collective started (traced runs)
  std::vector<P2pRun> p2p_;
  std::vector<int> earlier_;  // per p2p run: the run before it on the same peer and direction, or -1
  size_t firstPending_ = 0;   // p2p runs before this one are done
  std::vector<CollectiveRun> channels_;
  size_t nextCollective_ = 0;
  std::vector<int> blockedOn_;
};

HostExecutor::HostExecutor(const ExecutorContext& context) : context_(context) {
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
  if (waiters_.load() > 0) {
    std::lock_guard<std::mutex> lock(mutex_);
    progressChanged_.notify_all();
  }
}

void HostExecutor::wakeWorker() {
  { std::lock_guard<std::mutex> lock(mutex_); }
  workerWake_.notify_one();
}

static size_t groupBytes(const OpDesc& op, int nranks) {
  size_t bytes = op.count * typeSize(op.type);
  if (op.collective == Collective::ReduceScatter || op.collective == Collective::AllGather ||
      op.collective == Collective::AllToAll || op.collective == Collective::Gather ||
      op.collective == Collective::Scatter)
    bytes *= nranks;
  return bytes;
}

uint64_t HostExecutor::submit(const OpDesc* ops, size_t count) {
  size_t bytes = 0;
  bool background = false;
  for (size_t i = 0; i < count; ++i) {
    bytes += groupBytes(ops[i], context_.nranks);
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
    // queue makes the caller wait for the worker to drain the groups before
    // it (never dropping work), and a group larger than the queue grows it.
    if (count > queue_.size()) growQueue(count);
    if (queue_.size() - queueSize_ < count) {
      lock.unlock();
      workerWake_.notify_one();
      lock.lock();
      ++spaceWaiters_;
      progressChanged_.wait(lock, [&] { return queue_.size() - queueSize_ >= count || stopping_; });
      --spaceWaiters_;
      if (queue_.size() - queueSize_ < count) growQueue(queueSize_ + count);  // stopping: queued to fail
    }
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
    bytes += groupBytes(op, context_.nranks);
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
    if (op.collective != Collective::Send && op.collective != Collective::Recv) named = &op;
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

void HostExecutor::drive(bool smallOnly, uint64_t patienceNanos, uint64_t untilSeq) {
  Waiter waiter(context_.spinCount, context_.timeoutNanos, [this]() -> Status {
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
  for (;;) {
    if (untilSeq != 0 && completed_.load(std::memory_order_acquire) >= untilSeq) return;
    if (!activeValid_) {
      if (!popGroup(smallOnly)) return;
      if (!startActive()) continue;
    }
    bool progressed = false, done = false;
    Status status = active_->progress(&progressed, &done);
    if (!status.isOk()) {
      // A connection to another node broke: the peer may have left only
      // because a third rank died first, so ask who is still there.
      if (status.code() == weftRemoteError && context_.explainTimeout) status = context_.explainTimeout(status);
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
    if (patienceNanos != 0) {
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
// does neither within the timeout is left, with a warning.
void HostExecutor::failActive(const Status& status) {
  fail(status);
  std::vector<SendConnector*> unread = active_->unreadByAddress();
  uint64_t deadline = monotonicNanos() + context_.timeoutNanos;
  while (!unread.empty()) {
    std::erase_if(unread,
                  [&](SendConnector* to) { return to->drained() || context_.transports->readsNoMore(to->peer()); });
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
      workerWake_.wait(lock, [&] { return stopping_ || (workPending() && !token_.load()); });
      if (stopping_ && !workPending()) return;
      if (stopping_ && error_.isOk()) {
        error_ = WEFT_ERROR(weftInvalidUsage, "rank %d: communicator destroyed with work still queued", context_.rank);
        failed_ = true;
      }
    }
    if (!tryAcquireToken()) continue;
    drive(false, 0, 0);
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
