#include "exec/host_executor.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "core/logging.h"
#include "core/types.h"
#include "core/waiter.h"
#include "exec/reduce.h"

namespace weft {
namespace {

size_t ceilDiv(size_t a, size_t b) { return b == 0 ? 0 : (a + b - 1) / b; }
size_t roundUp(size_t a, size_t b) { return ceilDiv(a, b) * b; }

SlotHeader headerFor(const OpDesc& op, size_t bytes) {
  SlotHeader header{};
  header.magic = kSlotMagic;
  header.collective = static_cast<uint8_t>(op.collective == Collective::Recv ? Collective::Send : op.collective);
  header.datatype = static_cast<uint8_t>(op.type);
  header.redop = static_cast<uint8_t>(op.op);
  header.algorithm = op.plan ? static_cast<uint8_t>(op.plan->algorithm) : 0;
  header.root = op.root;
  header.bytes = static_cast<uint32_t>(bytes);
  header.count = op.count;
  header.opSeq = op.opSeq;
  return header;
}

std::string describeCall(Collective collective, size_t count, int type, int op, int root,
                         uint64_t opSeq) {
  return format("%s(count=%zu, %s, %s, root=%d) call #%llu", collectiveName(collective), count,
                typeName(static_cast<weftDataType_t>(type)), redOpName(static_cast<weftRedOp_t>(op)),
                root, static_cast<unsigned long long>(opSeq));
}

// What a slot from peer must look like for this rank's operation.
Status checkHeader(const SlotHeader& got, const OpDesc& op, size_t bytes, int rank, int peer) {
  SlotHeader want = headerFor(op, bytes);
  bool same = got.magic == want.magic && got.collective == want.collective &&
              got.datatype == want.datatype && got.count == want.count && got.opSeq == want.opSeq &&
              got.bytes == want.bytes;
  bool reducing = op.collective == Collective::AllReduce || op.collective == Collective::Reduce ||
                  op.collective == Collective::ReduceScatter;
  if (reducing) same = same && got.redop == want.redop;
  if (op.collective == Collective::Reduce || op.collective == Collective::Broadcast)
    same = same && got.root == want.root;
  if (op.plan) same = same && got.algorithm == want.algorithm;
  if (same) return Status::ok();
  if (got.magic != kSlotMagic)
    return WEFT_ERROR(weftInternalError, "rank %d: corrupt slot from rank %d", rank, peer);
  return WEFT_ERROR(weftInvalidUsage,
                    "rank %d: mismatched calls: rank %d is in %s but this rank is in %s; every "
                    "rank must make the same collective calls in the same order (and matching "
                    "send/recv counts)",
                    rank, peer,
                    describeCall(static_cast<Collective>(got.collective), got.count, got.datatype,
                                 got.redop, got.root, got.opSeq)
                        .c_str(),
                    describeCall(op.collective == Collective::Recv ? Collective::Send : op.collective,
                                 op.count, op.type, op.op, op.root, op.opSeq)
                        .c_str());
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
  size_t align = std::max<size_t>(1, 64 / g.typeBytes);
  if (plan.nBlocks == 1) {
    g.blockCount = op.count;
  } else if (op.collective == Collective::AllReduce) {
    g.blockCount = roundUp(ceilDiv(op.count, static_cast<size_t>(plan.nBlocks)), align);
    g.clampToCount = true;
  } else {
    g.blockCount = op.count;  // reduce-scatter recvcount, all-gather sendcount
  }
  g.channelCount = roundUp(ceilDiv(g.blockCount, static_cast<size_t>(plan.nChannels)), align);
  g.sliceCount = slotBytes / g.typeBytes;
  g.iterations = ceilDiv(g.channelCount, g.sliceCount);
  return g;
}

class CollectiveRun {
 public:
  CollectiveRun(const OpDesc& op, const ExecutorContext& context, int channel, char* scratch)
      : op_(op), plan_(*op.plan), context_(context), channel_(channel), scratch_(scratch),
        steps_(plan_.steps[context.rank][channel]) {
    size_t slotBytes = context.shm ? context.shm->config().slotBytes : (1u << 20);
    geometry_ = geometryFor(op, plan_, slotBytes);
    reduce_ = reduceFunction(op.type, op.op);
    divide_ = divideFunction(op.type);
  }

  bool done() const { return iteration_ >= geometry_.iterations || steps_.empty(); }
  // The peer the last unsuccessful attempt waited for.
  int blockedPeer() const { return blockedPeer_; }

  // Runs steps until one would block; sets *progressed if any ran.
  Status progress(bool* progressed) {
    while (!done()) {
      bool ran = false;
      WEFT_CHECK(tryStep(steps_[stepIndex_], &ran));
      if (!ran) return Status::ok();
      *progressed = true;
      if (++stepIndex_ == steps_.size()) {
        stepIndex_ = 0;
        ++iteration_;
      }
    }
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

  Status tryStep(const Step& step, bool* ran) {
    int block = 0;
    for (const ChunkRef* ref : {&step.src, &step.dst, &step.src2})
      if (ref->buffer == BufferId::Input || ref->buffer == BufferId::Output) {
        block = ref->chunk;
        break;
      }
    size_t lo = static_cast<size_t>(channel_) * geometry_.channelCount + iteration_ * geometry_.sliceCount;
    size_t hi = std::min({lo + geometry_.sliceCount,
                          static_cast<size_t>(channel_ + 1) * geometry_.channelCount,
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
      from = context_.shm->recvFrom(step.recvPeer, channel_);
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
    if (stepSends(step.op)) {
      to = context_.shm->sendTo(step.sendPeer, channel_);
      outgoing = to->trySlot();
      if (outgoing == nullptr) {
        blockedPeer_ = step.sendPeer;
        return Status::ok();
      }
    }
    char* dst = step.dst.buffer != BufferId::None ? pointer(step.dst, lo) : nullptr;
    const char* src = step.src.buffer != BufferId::None ? pointer(step.src, lo) : nullptr;
    bool divide = step.final && op_.op == weftAvg && plan_.nranks > 1;
    switch (step.op) {
      case StepOp::Send:
        memcpy(outgoing, src, bytes);
        break;
      case StepOp::Recv:
        memcpy(dst, incoming, bytes);
        break;
      case StepOp::RecvSend:
        memcpy(dst, incoming, bytes);
        memcpy(outgoing, incoming, bytes);
        break;
      case StepOp::RecvReduceSend:
        reduce_(outgoing, src, incoming, n);
        break;
      case StepOp::RecvReduceCopy:
        reduce_(dst, src, incoming, n);
        if (divide) divide_(dst, n, plan_.nranks);
        break;
      case StepOp::RecvReduceCopySend:
        reduce_(dst, src, incoming, n);
        if (divide) divide_(dst, n, plan_.nranks);
        memcpy(outgoing, dst, bytes);
        break;
      case StepOp::Copy:
        if (dst != src) memcpy(dst, src, bytes);
        break;
      case StepOp::LocalReduce:
        reduce_(dst, src, pointer(step.src2, lo), n);
        if (divide) divide_(dst, n, plan_.nranks);
        break;
    }
    if (from != nullptr) from->release();
    if (to != nullptr) to->post(headerFor(op_, bytes));
    *ran = true;
    return Status::ok();
  }

  const OpDesc& op_;
  const Plan& plan_;
  const ExecutorContext& context_;
  int channel_;
  char* scratch_;
  const std::vector<Step>& steps_;
  Geometry geometry_;
  ReduceFn reduce_;
  DivideFn divide_;
  size_t iteration_ = 0;
  size_t stepIndex_ = 0;
  int blockedPeer_ = -1;
};

// One send or receive, moved a slot at a time on channel 0 to/from its peer.
class P2pRun {
 public:
  P2pRun(const OpDesc& op, const ExecutorContext& context) : op_(op), context_(context) {
    total_ = op.count * typeSize(op.type);
  }
  bool done() const { return offset_ >= total_ && started_; }
  int peer() const { return op_.peer; }
  bool isSend() const { return op_.collective == Collective::Send; }

  Status progress(bool* progressed) {
    while (!done()) {
      size_t slotBytes = context_.shm->config().slotBytes;
      size_t bytes = std::min(slotBytes, total_ - offset_);
      if (isSend()) {
        SendConnector* to = context_.shm->sendTo(op_.peer, 0);
        void* slot = to->trySlot();
        if (slot == nullptr) return Status::ok();
        memcpy(slot, static_cast<const char*>(op_.send) + offset_, bytes);
        to->post(headerFor(op_, bytes));
      } else {
        RecvConnector* from = context_.shm->recvFrom(op_.peer, 0);
        const SlotHeader* header = from->tryHeader();
        if (header == nullptr) return Status::ok();
        WEFT_CHECK(checkHeader(*header, op_, bytes, context_.rank, op_.peer));
        memcpy(static_cast<char*>(op_.recv) + offset_, from->payload(), bytes);
        from->release();
      }
      offset_ += bytes;
      started_ = true;
      *progressed = true;
    }
    return Status::ok();
  }

 private:
  const OpDesc& op_;
  const ExecutorContext& context_;
  size_t total_ = 0;
  size_t offset_ = 0;
  bool started_ = false;  // a zero-byte message still sends one (empty) slot
};

}  // namespace

HostExecutor::HostExecutor(const ExecutorContext& context) : context_(context) {
  size_t slotBytes = context.shm ? context.shm->config().slotBytes : 0;
  scratch_.resize(static_cast<size_t>(context.maxChannels));
  for (auto& buffer : scratch_) buffer.assign(std::max<size_t>(slotBytes, 64), 0);
  queue_.resize(1024);
  worker_ = std::thread([this] { workerLoop(); });
}

HostExecutor::~HostExecutor() { stop(); }

void HostExecutor::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && !worker_.joinable()) return;
    stopping_ = true;
  }
  queueChanged_.notify_all();
  if (worker_.joinable()) worker_.join();
  progressChanged_.notify_all();
}

uint64_t HostExecutor::submit(const OpDesc* ops, size_t count) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (size_t i = 0; i < count; ++i) {
    // A full queue makes the caller wait for the worker, never drops work.
    progressChanged_.wait(lock, [&] { return queueSize_ < queue_.size() || stopping_; });
    if (stopping_) break;
    queue_[(queueHead_ + queueSize_) % queue_.size()] = ops[i];
    ++queueSize_;
    ++submitted_;
  }
  uint64_t seq = submitted_;
  bool wake = workerSleeping_;
  lock.unlock();
  if (wake) queueChanged_.notify_one();
  return seq;
}

void HostExecutor::workerLoop() {
  std::vector<OpDesc> group;
  for (;;) {
    group.clear();
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Poll briefly before sleeping: back-to-back calls arrive within
      // microseconds, and a sleeping worker costs a futex wake each.
      for (int spin = 0; queueSize_ == 0 && !stopping_ && spin < 200; ++spin) {
        lock.unlock();
        sched_yield();
        lock.lock();
      }
      workerSleeping_ = true;
      queueChanged_.wait(lock, [&] {
        if (stopping_) return true;
        // A group is complete when its last operation has arrived.
        for (size_t i = 0; i < queueSize_; ++i)
          if (queue_[(queueHead_ + i) % queue_.size()].lastInGroup) return true;
        return false;
      });
      workerSleeping_ = false;
      if (stopping_ && queueSize_ == 0) return;
      if (stopping_) {
        // Queued work will never run.
        if (error_.isOk())
          error_ = WEFT_ERROR(weftInvalidUsage, "rank %d: communicator destroyed with work queued", context_.rank);
        failed_ = true;
        completed_ = submitted_;
        queueSize_ = 0;
        progressChanged_.notify_all();
        return;
      }
      while (queueSize_ > 0) {
        OpDesc& op = queue_[queueHead_];
        group.push_back(op);
        op.plan.reset();
        queueHead_ = (queueHead_ + 1) % queue_.size();
        --queueSize_;
        if (group.back().lastInGroup) break;
      }
    }
    progressChanged_.notify_all();
    if (!failed_.load()) {
      Status status = runGroup(group);
      if (!status.isOk()) fail(status);
    }
    completed_.fetch_add(group.size(), std::memory_order_release);
    if (waiters_.load() > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      progressChanged_.notify_all();
    }
  }
}

void HostExecutor::fail(const Status& status) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_.isOk()) error_ = status;
  }
  failed_ = true;
  if (context_.shm != nullptr && status.code() != weftRemoteError)
    context_.shm->reportFatal(context_.rank, status.code(), status.message());
  WEFT_WARN("%s", status.message().c_str());
}

Status HostExecutor::runGroup(std::vector<OpDesc>& group) {
  // Self send/recv pairs match in posting order and are plain copies.
  std::vector<const OpDesc*> selfSends, selfRecvs;
  std::vector<P2pRun> p2p;
  for (const OpDesc& op : group) {
    if (op.collective != Collective::Send && op.collective != Collective::Recv) continue;
    if (op.peer == context_.rank) {
      (op.collective == Collective::Send ? selfSends : selfRecvs).push_back(&op);
    } else {
      p2p.emplace_back(op, context_);
    }
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

  // The peers the current wait depends on; only they must be alive (a peer
  // that finished its part and exited is no failure).
  std::vector<int> blockedOn;
  Waiter waiter(context_.spinCount, context_.timeoutNanos, [this, &blockedOn]() -> Status {
    if (context_.abortFlag != nullptr && context_.abortFlag->load())
      return WEFT_ERROR(weftInvalidUsage, "rank %d: communicator aborted", context_.rank);
    if (context_.shm != nullptr) {
      Status peerStatus;
      if (context_.shm->peerFailed(&peerStatus)) return peerStatus;
      for (int peer : blockedOn) WEFT_CHECK(context_.shm->checkPeerAlive(peer));
    }
    return Status::ok();
  });

  // Point-to-point operations progress together; several to the same peer
  // and direction go in posting order.
  while (!p2p.empty()) {
    bool progressed = false;
    std::map<std::pair<int, bool>, bool> busy;
    blockedOn.clear();
    for (P2pRun& run : p2p) {
      auto key = std::make_pair(run.peer(), run.isSend());
      if (run.done() || busy[key]) continue;
      WEFT_CHECK(run.progress(&progressed));
      if (!run.done()) {
        busy[key] = true;
        blockedOn.push_back(run.peer());
      }
    }
    bool all = std::all_of(p2p.begin(), p2p.end(), [](const P2pRun& r) { return r.done(); });
    if (all) break;
    if (progressed) waiter.reset();
    else WEFT_CHECK(waiter.pause("send/recv"));
  }

  for (const OpDesc& op : group) {
    if (op.collective == Collective::Send || op.collective == Collective::Recv) continue;
    std::vector<CollectiveRun> channels;
    for (int c = 0; c < op.plan->nChannels; ++c)
      channels.emplace_back(op, context_, c, scratch_[c].data());
    for (;;) {
      bool progressed = false, allDone = true;
      blockedOn.clear();
      for (CollectiveRun& run : channels) {
        WEFT_CHECK(run.progress(&progressed));
        allDone = allDone && run.done();
        if (!run.done()) blockedOn.push_back(run.blockedPeer());
      }
      if (allDone) break;
      if (progressed) waiter.reset();
      else WEFT_CHECK(waiter.pause(collectiveName(op.collective)));
    }
  }
  return Status::ok();
}

Status HostExecutor::wait(uint64_t seq) {
  for (int spin = 0; spin < 2000 && completed_.load(std::memory_order_acquire) < seq; ++spin)
    cpuRelax();
  if (completed_.load(std::memory_order_acquire) < seq) {
    std::unique_lock<std::mutex> lock(mutex_);
    ++waiters_;
    progressChanged_.wait(lock, [&] { return completed_.load() >= seq; });
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
