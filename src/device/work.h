// What the host side of the device executor hands the device: plain data,
// the same bytes for the GPU and the emulated device. A launch runs one
// group: its operations, each an operation's plan (copied to device memory
// once per plan), buffers and geometry, and the connections to every peer.
//
// Connections are FIFOs of slots in the receiver's device memory, one per
// (sender, receiver, channel), with two counters: `tail` (slots the sender
// posted, written by the sender) and `head` (slots the receiver released,
// written by the receiver). Two protocols share a FIFO:
//  - simple: the sender fills slot tail % depth (header and payload), fences,
//    and stores tail + 1; the receiver waits for tail, checks the header and
//    reads the payload (or, for a large message between ranks of one
//    process, the sender's buffer at the header's address), then stores
//    head + 1.
//  - low latency (LL), for small operations: every 4 bytes of header and
//    payload travel with a 4-byte flag in one 8-byte store, the flag being
//    the slot's sequence number + 1, so the receiver polls the words
//    themselves and needs no fence and no tail (the sender still bumps tail,
//    so that a simple operation after it finds the count it expects).
// Each link's counters of what this rank has sent and received persist in
// device memory between launches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "algorithms/step.h"
#include "device/port.h"
#include "weft/weft.h"

namespace weft::device {

constexpr int kFifoDepth = 4;
// The call a slot belongs to: transports/connector.h's SlotHeader, field for
// field, so the host reports a mismatch with the host's words.
struct WireHeader {
  uint32_t magic;
  uint8_t collective, datatype, redop, algorithm;
  int32_t root;
  uint32_t bytes;
  uint64_t count;
  uint64_t opSeq;
  uint64_t address;
};
static_assert(sizeof(WireHeader) == 40);
constexpr size_t kHeaderWords = sizeof(WireHeader) / 4;

struct alignas(128) Fifo {
  uint64_t tail;  // written by the sender
  uint64_t pad0[15];
  uint64_t head;  // written by the receiver
  uint64_t pad1[15];
  WireHeader headers[kFifoDepth];
  // Then the payload area: kFifoDepth slots of slotBytes (simple), and
  // kFifoDepth LL slots of llSlotWords() words.
};

// One peer on one channel, as this rank sees it.
struct Link {
  Fifo* send = nullptr;   // the peer's FIFO from this rank (in the peer's memory)
  Fifo* recv = nullptr;   // this rank's FIFO from the peer
  uint64_t sent = 0;      // slots this rank has posted to send
  uint64_t received = 0;  // slots this rank has released from recv
  // A peer on another node with GPUDirect RDMA: the slots themselves are the
  // net connection's, in device memory that the NIC reads and writes, slot
  // i at ring + (i % kFifoDepth) * stride: a 64-byte header line, then the
  // payload. The FIFO keeps the counters (and, sending, a copy of each
  // header, which tells the host how many bytes leave). Null: the FIFO's own.
  char* sendRing = nullptr;
  char* recvRing = nullptr;
  uint64_t sendRingStride = 0, recvRingStride = 0;
};
constexpr size_t kRingHeaderLine = 64;

// How a FIFO is laid out for a slot size.
struct FifoShape {
  size_t slotBytes = 0;    // simple payload per slot
  size_t llSlotBytes = 0;  // LL payload per slot (a multiple of 4)
  WEFT_HD size_t llSlotWords() const { return kHeaderWords + llSlotBytes / 4; }
  WEFT_HD size_t bytes() const {
    return sizeof(Fifo) + kFifoDepth * slotBytes + kFifoDepth * llSlotWords() * sizeof(uint64_t);
  }
  // Each block's scratch: four slots of this size (fan-in partial sums; LL
  // slots unpacked from two peers and packed for one).
  WEFT_HD size_t scratchSlotBytes() const { return slotBytes > llSlotBytes + 64 ? slotBytes : llSlotBytes + 64; }
  WEFT_HD char* payload(Fifo* fifo, uint64_t slot) const {
    return reinterpret_cast<char*>(fifo + 1) + (slot % kFifoDepth) * slotBytes;
  }
  WEFT_HD uint64_t* llWords(Fifo* fifo, uint64_t slot) const {
    return reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(fifo + 1) + kFifoDepth * slotBytes) +
           (slot % kFifoDepth) * llSlotWords();
  }
};

// What went wrong on the device, for the host to report after the launch.
enum class Fault : uint32_t { None, Timeout, Aborted, Mismatch };
struct FaultRecord {
  uint32_t fault;  // Fault (the first block to fail writes it)
  int32_t op;      // the operation's index in its launch
  int32_t peer;    // who this rank waited for, or whose slot did not match
  int32_t step;
  WireHeader got;  // Mismatch: the slot as it came
  uint32_t bytes;  // Mismatch: the payload bytes this rank expected
};

constexpr int64_t kNoAddress = INT64_MIN;

struct DeviceOp {
  const Step* steps = nullptr;  // the plan's, in device memory
  const uint32_t* channelStart = nullptr;
  int nChannels = 1;
  int nranks = 1;
  int redop = weftSum;
  int type = weftFloat32;
  const char* in = nullptr;
  char* out = nullptr;
  // Geometry (exec/geometry.h's, computed on the host with the op's slot size).
  size_t count = 0, typeBytes = 1, blockCount = 0, channelCount = 0, sliceCount = 0, iterations = 0;
  bool clampToCount = false;
  bool inputAllBlocks = true, outputAllBlocks = true;
  bool emptyMessages = false;
  bool average = false;     // weftAvg over more than one rank: final steps divide
  bool lowLatency = false;  // the LL protocol for every slot of this op
  bool byAddress = false;   // steps flagged kMayPublishAddress hand the receiver their address
  // Where this op's input ([2 * peer]) and output ([2 * peer + 1]) lie in
  // each peer's address space, minus where they lie here: 0 for a peer of
  // this process, the peer's mapping of a registered buffer for a peer of
  // another process (weftCommRegister), kNoAddress where the peer cannot
  // read it (its slots carry the data). Null: every peer shares the process.
  const int64_t* addressDelta = nullptr;
  bool concurrent = false;
  // Compared in every received header (the rest always are).
  bool matchRedop = false, matchRoot = false, matchAlgorithm = false;
  WireHeader header{};  // what this rank's slots say (bytes and address per slot)
  // PreMulSum: premulSource (the caller's input, premulElements long) is
  // scaled into `in` (a device buffer of the executor's) before any step.
  bool preMulSum = false;
  uint64_t scalarBits = 0;
  const void* scalarAt = nullptr;
  const char* premulSource = nullptr;
  size_t premulElements = 0;
};

struct Work {
  DeviceOp* ops = nullptr;
  int nOps = 0;
  int rank = 0;
  int nranks = 1;
  int maxChannels = 1;
  Link* links = nullptr;  // [peer * maxChannels + channel]
  FifoShape shape;
  char* scratch = nullptr;  // maxChannels + concurrent blocks, slotBytes each
  // Blocks [0, nConcurrentBlocks) run the concurrent operations: block b the
  // ops concurrentOps[concurrentStart[b] .. concurrentStart[b + 1]) in turn
  // (all sends to one peer, or all receives from one). The blocks after them
  // run the ordered operations, block nConcurrentBlocks + c channel c of each
  // in turn, once every concurrent block has finished.
  int nConcurrentBlocks = 0;
  const int* concurrentOps = nullptr;
  const int* concurrentStart = nullptr;
  int nOrderedBlocks = 0;
  // Copies of sends to itself, done by the first block before anything else.
  struct SelfCopy {
    const void* src;
    void* dst;
    size_t bytes;
  };
  const SelfCopy* selfCopies = nullptr;
  int nSelfCopies = 0;
  // Counters in device memory, zero when a launch starts: finished
  // concurrent blocks; the ordered blocks' meetings after a PreMulSum's
  // scaling (each adds one per meeting); blocks that have exited. The last
  // block to exit zeroes all three, so a launch's description holds no
  // running count and a CUDA graph may replay it.
  uint64_t* concurrentDone = nullptr;
  uint64_t* orderedBarrier = nullptr;
  uint64_t* exited = nullptr;
  int nBlocks = 0;
  FaultRecord* fault = nullptr;         // host-visible
  const uint32_t* abortFlag = nullptr;  // host-visible: set by weftCommAbort
  uint64_t timeoutNanos = 0;
};

}  // namespace weft::device
