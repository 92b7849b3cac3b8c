// Buffer geometry, as every executor cuts a call: over all channels and
// slices, each block's elements are moved exactly once, none outside the
// buffer, for awkward counts (0, 1, fewer elements than ranks, primes) and
// every registered algorithm's plan shape; sends and receives are plans
// whose zero-count messages still move one slot.
#include <gtest/gtest.h>

#include <vector>

#include "algorithms/plan.h"
#include "algorithms/registry.h"
#include "exec/geometry.h"

namespace weft {
namespace {

const size_t kCounts[] = {0, 1, 2, 3, 7, 31, 64, 97, 1021, 4099, 65537};

// Every element of every block is covered once by the slices of all
// channels, and the blocks tile [0, outputElements) of an all-blocks buffer.
void expectTiled(const Plan& plan, size_t count, size_t typeBytes, size_t slotBytes) {
  OpDesc op;
  op.count = count;
  op.type = typeBytes == 8 ? weftInt64 : typeBytes == 2 ? weftFloat16 : weftFloat32;
  op.plan = &plan;
  Geometry g = geometryFor(op, plan, slotBytes);
  SCOPED_TRACE(::testing::Message() << algorithmName(plan.algorithm) << " " << collectiveName(plan.collective)
                                    << " nranks=" << plan.nranks << " channels=" << plan.nChannels << " count=" << count
                                    << " type bytes=" << typeBytes);
  size_t total = plan.geometry == BlockGeometry::Split ? count : count * static_cast<size_t>(plan.nBlocks);
  std::vector<int> seen(total, 0);
  for (int block = 0; block < plan.nBlocks; ++block)
    for (int c = 0; c < plan.nChannels; ++c)
      for (size_t it = 0; it < g.iterations; ++it) {
        size_t lo = 0, hi = 0;
        g.slice(c, it, block, &lo, &hi);
        if (hi <= lo) continue;
        ASSERT_LE((hi - lo) * typeBytes, slotBytes);
        size_t start = g.chunkStart(BufferShape::AllBlocks, block);
        for (size_t i = lo; i < hi; ++i) {
          ASSERT_LT(start + i, total);
          ++seen[start + i];
        }
      }
  for (size_t i = 0; i < total; ++i) ASSERT_EQ(seen[i], 1) << "element " << i;
  EXPECT_EQ(plan.outputElements(count) * (plan.outputShape == BufferShape::OwnBlock ? plan.nBlocks : 1),
            plan.geometry == BlockGeometry::Whole ? count : total);
}

TEST(Geometry, EveryElementOfEveryBlockIsMovedOnceByEveryAlgorithmsPlans) {
  for (const AlgorithmEntry& entry : algorithmRegistry())
    for (int c = 0; c <= static_cast<int>(Collective::Scatter); ++c) {
      auto collective = static_cast<Collective>(c);
      if (!entry.supports(collective)) continue;
      for (int nranks : {1, 2, 3, 5, 8}) {
        for (int channels : {1, 2, 3}) {
          PlanRequest request;
          request.collective = collective;
          request.nranks = nranks;
          request.rank = nranks - 1;
          request.root = collectiveHasRoot(collective) ? nranks / 2 : -1;
          request.nChannels = channels;
          if (entry.id == Algorithm::Hierarchical)
            for (int r = 0; r < nranks; ++r) request.nodeOfRank.push_back(r * 2 / nranks);
          Plan plan = entry.build(request);
          for (size_t count : kCounts)
            for (size_t typeBytes : {2, 4, 8})
              for (size_t slotBytes : {size_t{256}, size_t{4096}}) expectTiled(plan, count, typeBytes, slotBytes);
        }
      }
    }
}

// A deep tree cuts each slot's worth into slices (Plan::slicesPerSlot):
// whole 64-byte lines, at least one, every element still moved once.
TEST(Geometry, DeepTreesCutSlotsIntoSmallerSlices) {
  PlanRequest request;
  request.collective = Collective::AllReduce;
  request.nranks = 64;  // depth 6: 3 slices a slot
  request.rank = 5;
  Plan plan = algorithmEntry(Algorithm::Tree).build(request);
  EXPECT_EQ(plan.slicesPerSlot, 3);
  request.nranks = 4;
  EXPECT_EQ(algorithmEntry(Algorithm::Tree).build(request).slicesPerSlot, 1);
  request.nranks = 16384;
  EXPECT_EQ(algorithmEntry(Algorithm::Tree).build(request).slicesPerSlot, 7);
  OpDesc op;
  op.count = 1 << 20;
  op.type = weftFloat32;
  op.plan = &plan;
  EXPECT_EQ(geometryFor(op, plan, 4096).sliceCount, 336u);  // 1024 floats / 3, down to 64-byte lines
  EXPECT_EQ(geometryFor(op, plan, 64).sliceCount, 16u);     // never below one line
  for (size_t count : kCounts) expectTiled(plan, count, 4, 4096);
}

TEST(Geometry, PerRankPlansSayHowLargeTheirBuffersAre) {
  PlanRequest request;
  request.nranks = 4;
  request.collective = Collective::ReduceScatter;
  Plan rs = buildRingPlan(request);
  EXPECT_EQ(rs.inputElements(10), 40u);
  EXPECT_EQ(rs.outputElements(10), 10u);
  request.collective = Collective::AllGather;
  Plan ag = buildRingPlan(request);
  EXPECT_EQ(ag.inputElements(10), 10u);
  EXPECT_EQ(ag.outputElements(10), 40u);
  request.collective = Collective::AllReduce;
  Plan ar = buildRingPlan(request);
  EXPECT_EQ(ar.inputElements(10), 10u);
  EXPECT_EQ(ar.outputElements(10), 10u);
}

TEST(Geometry, SendAndReceiveArePlansWhoseEmptyMessagesStillMoveOneSlot) {
  Plan send = buildPointToPointPlan(Collective::Send, 4, 1, 3);
  Plan recv = buildPointToPointPlan(Collective::Recv, 4, 3, 1);
  ASSERT_EQ(send.channel(0).size(), 1u);
  ASSERT_EQ(recv.channel(0).size(), 1u);
  EXPECT_EQ(send.channel(0)[0].op, StepOp::Send);
  EXPECT_EQ(send.channel(0)[0].sendPeer, 3);
  EXPECT_NE(send.channel(0)[0].flags & kMayPublishAddress, 0);
  EXPECT_EQ(recv.channel(0)[0].op, StepOp::Recv);
  EXPECT_EQ(recv.channel(0)[0].recvPeer, 1);
  EXPECT_EQ(recv.channel(0)[0].flags & kMayPublishAddress, 0);
  EXPECT_TRUE(send.concurrent && recv.concurrent && send.emptyMessages && recv.emptyMessages);

  OpDesc op;
  op.type = weftFloat32;
  op.plan = &send;
  for (size_t count : {size_t{0}, size_t{1}, size_t{1000}}) {
    op.count = count;
    Geometry g = geometryFor(op, send, 4096);
    EXPECT_EQ(g.iterations, 1u) << count;
  }
  op.count = 1025;  // one element more than a 4 KiB slot
  EXPECT_EQ(geometryFor(op, send, 4096).iterations, 2u);
  expectTiled(send, 1025, 4, 4096);

  // A collective of no elements moves nothing.
  PlanRequest request;
  request.nranks = 4;
  Plan ring = buildRingPlan(request);
  op.plan = &ring;
  op.count = 0;
  EXPECT_EQ(geometryFor(op, ring, 4096).iterations, 0u);
}

}  // namespace
}  // namespace weft
