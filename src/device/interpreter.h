// The device plan interpreter: what one thread block runs in a launch (see
// work.h). Written once against port.h and elements.h, compiled by nvcc into
// the kernel (kernel.cu) and by the host compiler into the emulated device
// (emulated.cc). Unlike the host executor, a block waits where a step cannot
// run yet: a block is a channel's own, so nothing else needs its thread.
// Every wait watches the launch's fault word, the communicator's abort flag
// and the timeout, so a peer that is gone or disagrees ends the launch with
// a fault record for the host to report instead of a hang.
#pragma once

#include "device/elements.h"
#include "device/port.h"
#include "device/work.h"

namespace weft::device {

// A wait in progress: when it began, and how often it has spun.
struct Wait {
  uint64_t start = 0;
  uint64_t spins = 0;
};

struct BlockRun {
  // Copies, in each thread's registers and local memory: the launch's
  // description lives in host memory the device reads over PCIe, once per
  // block and once per operation rather than at every step.
  Work work;
  char* scratch;  // slotBytes: fan-in partial sums, divisions
  char* llIn;     // LL: the first peer's unpacked slot
  char* llIn2;    // LL: the second peer's (fan-in)
  char* llOut;    // LL: what is packed into the outgoing words
  int opIndex = 0;
  int channel = 0;
  int stepIndex = 0;
  int lateAwait = -1;           // a token awaited in the last slice, if any
  bool lateTokenTaken = false;  // ... and taken early
  bool published = false;       // a slot went by address on this channel

  DeviceOp current{};  // work.ops[opIndex]

  WEFT_DEVICE_CODE const DeviceOp& op() const { return current; }
  WEFT_DEVICE_CODE Link& link(int peer) const {
    return work.links[static_cast<size_t>(peer) * static_cast<size_t>(work.maxChannels) + channel];
  }

  // Records a fault (the first one wins) and says the block must stop. A
  // wait the block votes on records from lane 0; a lane waiting alone (an
  // LL word) records from itself.
  WEFT_DEVICE_CODE bool fail(Fault fault, int peer, bool anyLane = false) const {
    if ((anyLane || laneIndex() == 0) && claimWord32(&work.fault->fault, static_cast<uint32_t>(fault))) {
      work.fault->op = opIndex;
      work.fault->peer = peer;
      work.fault->step = stepIndex;
    }
    return false;
  }

  // One more turn of a wait; false (on every lane) when the block must stop.
  WEFT_DEVICE_CODE bool keepWaiting(Wait& wait, int peer) const {
    if (wait.spins++ == 0) wait.start = clockNanos();
    spinPause(wait.spins);
    bool stop = false;
    if (laneIndex() == 0 && (wait.spins & 15) == 0) {
      if (loadFlag32(&work.fault->fault) != 0)
        stop = true;
      else if (work.abortFlag != nullptr && loadFlag32(work.abortFlag) != 0)
        stop = !fail(Fault::Aborted, peer);  // fail() is always false
      else if (work.timeoutNanos != 0 && clockNanos() - wait.start > work.timeoutNanos)
        stop = !fail(Fault::Timeout, peer);
    }
    return !blockAny(stop);
  }

  WEFT_DEVICE_CODE bool headerMatches(const WireHeader& got, uint32_t bytes) const {
    const WireHeader& want = op().header;
    bool same = got.magic == want.magic && got.collective == want.collective && got.datatype == want.datatype &&
                got.count == want.count && got.opSeq == want.opSeq && got.bytes == bytes;
    if (op().matchRedop) same = same && got.redop == want.redop;
    if (op().matchRoot) same = same && got.root == want.root;
    if (op().matchAlgorithm) same = same && got.algorithm == want.algorithm;
    return same;
  }
  WEFT_DEVICE_CODE bool mismatch(const WireHeader& got, uint32_t bytes, int peer) const {
    if (laneIndex() == 0 && claimWord32(&work.fault->fault, static_cast<uint32_t>(Fault::Mismatch))) {
      work.fault->op = opIndex;
      work.fault->peer = peer;
      work.fault->step = stepIndex;
      work.fault->got = got;
      work.fault->bytes = bytes;
    }
    return false;
  }

  // --- receiving ---------------------------------------------------------

  // Whether the next slot from peer has arrived (simple protocol).
  WEFT_DEVICE_CODE bool slotArrived(int peer) const {
    Link& l = link(peer);
    return loadFlag(&l.recv->tail) > l.received;
  }

  // The header of the next slot from the link's peer, once it has arrived:
  // in the FIFO, or in the slot's header line where the NIC wrote it.
  WEFT_DEVICE_CODE WireHeader arrivedHeader(const Link& l) const {
    WireHeader header;
    if (l.recvRing != nullptr)
      memcpy(&header, l.recvRing + (l.received % kFifoDepth) * l.recvRingStride, sizeof(header));
    else
      header = l.recv->headers[l.received % kFifoDepth];
    return header;
  }

  // Waits for the next slot from peer and checks that it belongs to this
  // call and carries `bytes`; *payload is where its data is.
  WEFT_DEVICE_CODE bool receive(int peer, uint32_t bytes, char* llInto, const char** payload) {
    Link& l = link(peer);
    const FifoShape& shape = work.shape;
    Wait wait;
    if (op().lowLatency) {
      uint64_t* words = shape.llWords(l.recv, l.received);
      uint32_t flag = static_cast<uint32_t>(l.received + 1);
      // Every lane polls its own words: the header first, checked before
      // the payload is awaited (a sender of another call may send less).
      uint32_t* into = reinterpret_cast<uint32_t*>(llInto);
      auto take = [&](size_t from, size_t to) {
        for (size_t i = from + static_cast<size_t>(laneIndex()); i < to; i += static_cast<size_t>(laneCount())) {
          uint64_t word = loadWord(words + i);
          while (static_cast<uint32_t>(word >> 32) != flag) {
            if (!keepWaitingAlone(wait, peer)) return;
            word = loadWord(words + i);
          }
          into[i] = static_cast<uint32_t>(word);
        }
      };
      take(0, kHeaderWords);
      if (blockAny(loadFlag32(&work.fault->fault) != 0)) return false;
      WireHeader got;
      memcpy(&got, into, sizeof(WireHeader));
      if (!headerMatches(got, bytes)) return mismatch(got, bytes, peer);
      take(kHeaderWords, kHeaderWords + (bytes + 3) / 4);
      if (blockAny(loadFlag32(&work.fault->fault) != 0)) return false;
      *payload = llInto + sizeof(WireHeader);
      return true;
    }
    while (!blockAny(slotArrived(peer)))
      if (!keepWaiting(wait, peer)) return false;
    WireHeader copy = arrivedHeader(l);
    if (!headerMatches(copy, bytes)) return mismatch(copy, bytes, peer);
    if (l.recvRing != nullptr)  // straight from the NIC (an address from another node would mean nothing here)
      *payload = l.recvRing + (l.received % kFifoDepth) * l.recvRingStride + kRingHeaderLine;
    else
      *payload = copy.address != 0 ? reinterpret_cast<const char*>(copy.address) : shape.payload(l.recv, l.received);
    return true;
  }

  // An LL word's wait runs on each lane by itself (lanes reach their words
  // at different times), so it cannot vote; it stops on a fault any lane
  // recorded, which the vote after the loop then sees.
  WEFT_DEVICE_CODE bool keepWaitingAlone(Wait& wait, int peer) const {
    if (wait.spins++ == 0) wait.start = clockNanos();
    spinPause(wait.spins);
    if ((wait.spins & 15) != 0) return true;
    if (loadFlag32(&work.fault->fault) != 0) return false;
    if (work.abortFlag != nullptr && loadFlag32(work.abortFlag) != 0) return fail(Fault::Aborted, peer, true);
    if (work.timeoutNanos != 0 && clockNanos() - wait.start > work.timeoutNanos)
      return fail(Fault::Timeout, peer, true);
    return true;
  }

  // Hands the slot back to its sender, once every lane is done with it.
  WEFT_DEVICE_CODE void release(int peer) const {
    Link& l = link(peer);
    blockBarrier();
    if (laneIndex() == 0) {
      storeFlag(&l.recv->head, l.received + 1);
      ++l.received;
    }
    blockBarrier();
  }

  // --- sending -----------------------------------------------------------

  // Waits for a free slot to peer; *into is where the payload goes.
  WEFT_DEVICE_CODE bool reserve(int peer, char** into) {
    Link& l = link(peer);
    Wait wait;
    while (!blockAny(l.sent - loadFlag(&l.send->head) < kFifoDepth))
      if (!keepWaiting(wait, peer)) return false;
    *into = op().lowLatency         ? llOut
            : l.sendRing != nullptr ? l.sendRing + (l.sent % kFifoDepth) * l.sendRingStride + kRingHeaderLine
                                    : work.shape.payload(l.send, l.sent);
    return true;
  }

  // Whether the peer can read what this rank publishes from `buffer` (the
  // op's input or output), and where it lies for the peer (*delta added).
  WEFT_DEVICE_CODE bool addressFor(int peer, BufferId buffer, int64_t* delta) const {
    const DeviceOp& o = op();
    *delta = 0;
    if (o.addressDelta == nullptr) return true;
    if (buffer != BufferId::Input && buffer != BufferId::Output) return false;
    int64_t d = o.addressDelta[2 * peer + (buffer == BufferId::Output ? 1 : 0)];
    if (d == kNoAddress) return false;
    *delta = d;
    return true;
  }

  // Posts the reserved slot: `bytes` of payload (address: by address).
  WEFT_DEVICE_CODE void post(int peer, uint32_t bytes, const void* address) {
    Link& l = link(peer);
    WireHeader header = op().header;
    header.bytes = bytes;
    header.address = reinterpret_cast<uint64_t>(address);
    if (op().lowLatency) {
      blockBarrier();  // llOut is complete
      uint64_t* words = work.shape.llWords(l.send, l.sent);
      uint64_t flag = static_cast<uint64_t>(static_cast<uint32_t>(l.sent + 1)) << 32;
      const uint32_t* head = reinterpret_cast<const uint32_t*>(&header);
      const uint32_t* data = reinterpret_cast<const uint32_t*>(llOut);
      size_t nWords = kHeaderWords + (bytes + 3) / 4;
      for (size_t i = static_cast<size_t>(laneIndex()); i < nWords; i += static_cast<size_t>(laneCount()))
        storeWord(words + i, flag | (i < kHeaderWords ? head[i] : data[i - kHeaderWords]));
      blockBarrier();
      if (laneIndex() == 0) storeFlag(&l.send->tail, l.sent + 1);
    } else {
      if (laneIndex() == 0) {
        l.send->headers[l.sent % kFifoDepth] = header;
        if (l.sendRing != nullptr)
          memcpy(l.sendRing + (l.sent % kFifoDepth) * l.sendRingStride, &header, sizeof(header));
      }
      blockBarrier();  // payload and header written by every lane
      if (laneIndex() == 0) storeFlag(&l.send->tail, l.sent + 1);
    }
    blockBarrier();
    if (laneIndex() == 0) ++l.sent;
    blockBarrier();
  }

  // --- steps -------------------------------------------------------------

  WEFT_DEVICE_CODE char* pointer(const ChunkRef& ref, size_t offset) const {
    const DeviceOp& o = op();
    if (ref.buffer == BufferId::Scratch) return scratch;
    bool input = ref.buffer == BufferId::Input;
    bool all = input ? o.inputAllBlocks : o.outputAllBlocks;
    char* base = input ? const_cast<char*>(o.in) : o.out;
    size_t start = all ? static_cast<size_t>(ref.chunk) * o.blockCount : 0;
    return base + (start + offset) * o.typeBytes;
  }

  WEFT_DEVICE_CODE size_t blockLength(int block) const {
    const DeviceOp& o = op();
    if (!o.clampToCount) return o.blockCount;
    size_t start = static_cast<size_t>(block) * o.blockCount;
    return start >= o.count ? 0 : (o.count - start < o.blockCount ? o.count - start : o.blockCount);
  }

  // While waiting: the token awaited in the last slice is taken as soon as
  // it heads its FIFO (see the host executor's takeLateTokens).
  WEFT_DEVICE_CODE bool takeLateToken(const Step* steps, size_t iteration) {
    if (lateAwait < 0 || lateTokenTaken || op().iterations <= 1 || iteration + 1 == op().iterations) return true;
    int peer = steps[lateAwait].recvPeer;
    if (op().lowLatency || !blockAny(slotArrived(peer))) return true;
    WireHeader got = arrivedHeader(link(peer));
    if (got.bytes != 0) return true;
    if (!headerMatches(got, 0)) return mismatch(got, 0, peer);
    release(peer);
    lateTokenTaken = true;
    return true;
  }

  WEFT_DEVICE_CODE bool token(const Step& step, size_t iteration) {
    const DeviceOp& o = op();
    bool takenEarly = lateTokenTaken && stepIndex == lateAwait;
    if (takenEarly || iteration != (step.onLastSlice ? o.iterations - 1 : 0)) return true;
    if (step.op == StepOp::Await) {
      const char* payload = nullptr;
      if (!receive(step.recvPeer, 0, llIn, &payload)) return false;
      release(step.recvPeer);
      return true;
    }
    char* into = nullptr;
    if (!reserve(step.sendPeer, &into)) return false;
    post(step.sendPeer, 0, nullptr);
    return true;
  }

  WEFT_DEVICE_CODE bool run(const Step& step, const Step* steps, size_t iteration) {
    if (stepIsToken(step.op)) return token(step, iteration);
    const DeviceOp& o = op();
    size_t lo = static_cast<size_t>(channel) * o.channelCount + iteration * o.sliceCount;
    size_t hi = lo + o.sliceCount;
    size_t channelEnd = static_cast<size_t>(channel + 1) * o.channelCount;
    if (hi > channelEnd) hi = channelEnd;
    size_t length = blockLength(step.block);
    if (hi > length) hi = length;
    bool empty = hi <= lo;
    if (empty && !o.emptyMessages) return true;
    size_t n = empty ? 0 : hi - lo;
    uint32_t bytes = static_cast<uint32_t>(n * o.typeBytes);

    // Tokens went above: these are data steps.
    bool receives = stepReceives(step.op);
    bool sends = stepSends(step.op);
    const char* incoming = nullptr;
    const char* incoming2 = nullptr;
    if (receives) {
      // A late token may head the FIFO this step waits on.
      if (!takeLateToken(steps, iteration)) return false;
      if (!receive(step.recvPeer, bytes, llIn, &incoming)) return false;
      if (step.recvPeer2 >= 0 && !receive(step.recvPeer2, bytes, llIn2, &incoming2)) return false;
    }
    bool byAddress = (step.flags & kMayPublishAddress) != 0 && o.byAddress && !o.lowLatency && sends;
    int64_t delta = 0;  // from this rank's addresses to the receiver's
    if (byAddress)
      byAddress = addressFor(step.sendPeer, step.op == StepOp::Send ? step.src.buffer : step.dst.buffer, &delta);
    char* outgoing = nullptr;
    if (sends && !reserve(step.sendPeer, &outgoing)) return false;

    char* dst = step.dst.buffer != BufferId::None && !empty ? pointer(step.dst, lo) : nullptr;
    const char* src = step.src.buffer != BufferId::None && !empty ? pointer(step.src, lo) : nullptr;
    if (incoming2 != nullptr && !empty) {
      // src ⊕ first, in scratch; the step goes on with it as its operand.
      reduceSlice(scratch, src, incoming, n, o.type, o.redop);
      blockBarrier();
      src = scratch;
      incoming = incoming2;
    }
    bool divide = step.final && o.average;
    auto reduceTo = [&](char* into, const char* a, const char* b) {
      reduceSlice(into, a, b, n, o.type, o.redop);
      if (divide) {
        blockBarrier();
        divideSlice(into, into, n, o.type, o.nranks);
      }
    };
    const void* address = nullptr;
    if (!empty) switch (step.op) {
        case StepOp::Send:
          if (byAddress)
            address = src;
          else
            copySlice(outgoing, src, bytes);
          break;
        case StepOp::Recv:
          if (divide)
            divideSlice(dst, incoming, n, o.type, o.nranks);
          else
            copySlice(dst, incoming, bytes);
          break;
        case StepOp::RecvSend:
          copySlice(dst, incoming, bytes);
          if (byAddress)
            address = dst;
          else
            copySlice(outgoing, incoming, bytes);
          break;
        case StepOp::RecvReduceSend:
          if (byAddress) {
            reduceSlice(dst, src, incoming, n, o.type, o.redop);
            address = dst;
          } else {
            reduceSlice(outgoing, src, incoming, n, o.type, o.redop);
          }
          break;
        case StepOp::RecvReduceCopy: reduceTo(dst, src, incoming); break;
        case StepOp::RecvReduceCopySend:
          reduceTo(dst, src, incoming);
          blockBarrier();
          if (byAddress)
            address = dst;
          else
            copySlice(outgoing, dst, bytes);
          break;
        case StepOp::Copy: copySlice(dst, src, bytes); break;
        case StepOp::LocalReduce: reduceTo(dst, src, pointer(step.src2, lo)); break;
        default: break;
      }
    if (receives) {
      release(step.recvPeer);
      if (step.recvPeer2 >= 0) release(step.recvPeer2);
    }
    if (sends) {
      if (byAddress) published = true;
      if (address != nullptr)
        address = reinterpret_cast<const void*>(reinterpret_cast<uint64_t>(address) + static_cast<uint64_t>(delta));
      post(step.sendPeer, bytes, address);
    }
    blockBarrier();
    return true;
  }

  // One channel of operation `index`, every slice.
  WEFT_DEVICE_CODE bool runChannel(int index, int c) {
    opIndex = index;
    current = work.ops[index];
    channel = c;
    const DeviceOp& o = op();
    const Step* steps = o.steps + o.channelStart[c];
    int nSteps = static_cast<int>(o.channelStart[c + 1] - o.channelStart[c]);
    if (nSteps == 0) return true;
    lateAwait = -1;
    lateTokenTaken = false;
    published = false;
    for (int i = 0; i < nSteps; ++i)
      if (steps[i].op == StepOp::Await && steps[i].onLastSlice) lateAwait = i;
    for (StepWalk walk(static_cast<size_t>(nSteps), o.iterations); !walk.done(static_cast<size_t>(nSteps));
         walk.advance(steps, static_cast<size_t>(nSteps), o.iterations)) {
      stepIndex = static_cast<int>(walk.step);
      if (!run(steps[stepIndex], steps, walk.slice)) return false;
    }
    // What went by address stays put until every receiver has taken it.
    if (published)
      for (int peer = 0; peer < work.nranks; ++peer) {
        Link& l = link(peer);
        if (l.send == nullptr) continue;
        Wait wait;
        while (!blockAny(loadFlag(&l.send->head) >= l.sent))
          if (!keepWaiting(wait, peer)) return false;
      }
    return true;
  }

  // A PreMulSum's scaling, this block's share of it (ordered blocks split
  // the input between them and meet at a barrier before anyone reads it).
  WEFT_DEVICE_CODE void scaleShare(const DeviceOp& o, size_t elements, int share, int shares) const {
    uint64_t scalar = o.scalarBits;
    if (o.scalarAt != nullptr) {
      scalar = 0;
      memcpy(&scalar, o.scalarAt, o.typeBytes);
    }
    // o.in is the scaled copy the steps read; premulSource the caller's input.
    size_t per = (elements + static_cast<size_t>(shares) - 1) / static_cast<size_t>(shares);
    size_t lo = per * static_cast<size_t>(share);
    size_t hi = lo + per < elements ? lo + per : elements;
    if (lo < hi)
      multiplySlice(const_cast<char*>(o.in) + lo * o.typeBytes, o.premulSource + lo * o.typeBytes, hi - lo, o.type,
                    scalar);
  }
};

// What block `block` of a launch of `work` does, up to its exit.
WEFT_DEVICE_CODE inline void runBlockBody(const Work& work, int block) {
  size_t slot = work.shape.scratchSlotBytes();
  char* mine = work.scratch + static_cast<size_t>(block) * 4 * slot;
  BlockRun run{work, mine, mine + slot, mine + 2 * slot, mine + 3 * slot};
  if (block < work.nConcurrentBlocks) {
    if (block == 0)
      for (int i = 0; i < work.nSelfCopies; ++i)
        copySlice(work.selfCopies[i].dst, work.selfCopies[i].src, work.selfCopies[i].bytes);
    for (int i = work.concurrentStart[block]; i < work.concurrentStart[block + 1]; ++i)
      if (!run.runChannel(work.concurrentOps[i], 0)) break;
    blockBarrier();
    if (laneIndex() == 0) addCounter(work.concurrentDone, 1);
    return;
  }
  int c = block - work.nConcurrentBlocks;
  Wait wait;
  while (!blockAny(loadFlag(work.concurrentDone) >= static_cast<uint64_t>(work.nConcurrentBlocks)))
    if (!run.keepWaiting(wait, -1)) return;
  uint64_t meetings = 0;
  for (int i = 0; i < work.nOps; ++i) {
    const DeviceOp& o = work.ops[i];
    if (o.concurrent) continue;
    if (o.preMulSum) {
      run.opIndex = i;
      run.current = o;
      run.scaleShare(o, o.premulElements, c, work.nOrderedBlocks);
      blockBarrier();
      if (laneIndex() == 0) addCounter(work.orderedBarrier, 1);
      ++meetings;
      uint64_t target = meetings * static_cast<uint64_t>(work.nOrderedBlocks);
      Wait meet;
      while (!blockAny(loadFlag(work.orderedBarrier) >= target))
        if (!run.keepWaiting(meet, -1)) return;
    }
    if (c < o.nChannels && !run.runChannel(i, c)) return;
  }
}

// The kernel's body: the block's work, then its exit counted; the last
// block out zeroes the launch's counters for the next launch (or replay).
WEFT_DEVICE_CODE inline void runBlock(const Work& work, int block) {
  runBlockBody(work, block);
  blockBarrier();
  if (laneIndex() == 0 && addCounter(work.exited, 1) + 1 == static_cast<uint64_t>(work.nBlocks)) {
    storeFlag(work.concurrentDone, 0);
    storeFlag(work.orderedBarrier, 0);
    storeFlag(work.exited, 0);
  }
}

}  // namespace weft::device
