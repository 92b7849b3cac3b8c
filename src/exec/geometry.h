// Buffer geometry: how a call's count becomes the element ranges its plan's
// chunks name. Plans know nothing of sizes; the executor cuts every block
// across the plan's channels and walks each channel's share one FIFO slot
// (a slice) at a time. Shared by every executor, so that all cut a call
// alike (a receiver's slices are its sender's).
#pragma once

#include <algorithm>
#include <cstddef>

#include "algorithms/plan.h"
#include "exec/op_desc.h"

namespace weft {

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

  // Where chunk `chunk` starts, in elements, in a buffer of this shape.
  size_t chunkStart(BufferShape shape, int chunk) const {
    return shape == BufferShape::AllBlocks ? static_cast<size_t>(chunk) * blockCount : 0;
  }

  // The elements [lo, hi) of block `block` that channel `channel` moves in
  // slice `iteration`; empty (hi <= lo) where the block holds none there.
  void slice(int channel, size_t iteration, int block, size_t* lo, size_t* hi) const {
    *lo = static_cast<size_t>(channel) * channelCount + iteration * sliceCount;
    *hi = std::min({*lo + sliceCount, static_cast<size_t>(channel + 1) * channelCount, blockLength(block)});
  }
};

// The geometry of op under plan with slots of slotBytes payload bytes.
// Channel shares are multiples of 64 bytes. Plans with emptyMessages have at
// least one slice.
Geometry geometryFor(const OpDesc& op, const Plan& plan, size_t slotBytes);

// Bytes in the larger of op's buffers (what decides where it runs).
size_t callBytes(const OpDesc& op);

}  // namespace weft
