// The one interface the executor sees: a connector is one direction between
// two ranks, a FIFO of slots with head/tail counters. The sender fills the
// slot at tail and bumps tail; the receiver reads the slot at head and bumps
// head. Every slot carries a header describing the call it belongs to, so a
// rank that receives data from a different call reports the mismatch instead
// of reducing garbage.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft {

struct SlotHeader {
  uint32_t magic;
  uint8_t collective;  // Collective
  uint8_t datatype;    // weftDataType_t
  uint8_t redop;       // weftRedOp_t
  uint8_t algorithm;   // Algorithm
  int32_t root;
  uint32_t bytes;  // payload bytes in this slot
  uint64_t count;  // the call's element count as the sender saw it
  uint64_t opSeq;  // how many calls the sender made on this communicator before
  // Non-zero: the payload was not copied; it stays at this address in the
  // sender's address space (ranks that are threads of one process), and the
  // sender keeps it unchanged until the slot is released.
  uint64_t address;
};
constexpr uint32_t kSlotMagic = 0x534c4f54;  // "SLOT"
// Payloads up to this size travel inside the slot's header line, so a small
// message costs the receiver one cache-line transfer (flag and data in one
// line, the LL idea on the host).
constexpr size_t kInlinePayloadBytes = 16;

class SendConnector {
 public:
  virtual ~SendConnector() = default;
  // Non-blocking: a free slot's payload area for bytes, or nullptr when the
  // FIFO is full.
  virtual void* trySlot(size_t bytes) = 0;
  // Publishes the slot returned by trySlot().
  virtual void post(const SlotHeader& header) = 0;
  virtual size_t slotBytes() const = 0;
  virtual int peer() const = 0;
  // True when the receiver has released every slot posted so far.
  virtual bool drained() = 0;

  // Device-memory slots (the net transport's GPUDirect RDMA mode; null
  // otherwise): a ring of slots, each a 64-byte header line then the
  // payload, that a GPU kernel fills itself; slot i is ring + (i % *count) *
  // *stride. postFilled sends the next slot as the kernel wrote it (false:
  // none is free yet); completed() counts the slots sent, free again.
  virtual char* deviceRing(size_t* stride, uint64_t* count) const {
    (void)stride;
    (void)count;
    return nullptr;
  }
  virtual bool postFilled(uint32_t bytes) {
    (void)bytes;
    return false;
  }
  virtual uint64_t completed() { return 0; }
};

class RecvConnector {
 public:
  virtual ~RecvConnector() = default;
  // Non-blocking: the header of the next filled slot, or nullptr.
  virtual const SlotHeader* tryHeader() = 0;
  virtual const void* payload() const = 0;  // of the slot tryHeader() returned
  virtual void release() = 0;               // frees that slot for the sender
  virtual int peer() const = 0;

  // Device-memory slots, as SendConnector's: arrivedCount() counts the
  // slots received into the ring (made visible to the device), and
  // releaseUpTo(n) hands the first n back for the next messages.
  virtual char* deviceRing(size_t* stride, uint64_t* count) const {
    (void)stride;
    (void)count;
    return nullptr;
  }
  virtual uint64_t arrivedCount() { return 0; }
  virtual void releaseUpTo(uint64_t released) { (void)released; }
};

}  // namespace weft
