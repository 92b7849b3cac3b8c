#include "exec/geometry.h"

#include "core/types.h"

namespace weft {
namespace {

size_t ceilDiv(size_t a, size_t b) { return b == 0 ? 0 : (a + b - 1) / b; }

}  // namespace

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
  if (plan.slicesPerSlot > 1)  // whole 64-byte lines, at least one
    g.sliceCount = std::max(align, (g.sliceCount / static_cast<size_t>(plan.slicesPerSlot)) & ~(align - 1));
  g.iterations = g.channelCount <= g.sliceCount ? (g.channelCount > 0 ? 1 : 0) : ceilDiv(g.channelCount, g.sliceCount);
  if (plan.emptyMessages && g.iterations == 0) g.iterations = 1;
  return g;
}

size_t callBytes(const OpDesc& op) {
  size_t elements = op.count;
  if (op.plan != nullptr) elements = std::max(op.plan->inputElements(op.count), op.plan->outputElements(op.count));
  return elements * typeSize(op.type);
}

}  // namespace weft
