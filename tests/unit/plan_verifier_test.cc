// The verifier proves every plan for 1..64 ranks, and rejects plans that are
// broken in each way it claims to catch.
#include <gtest/gtest.h>

#include "algorithms/plan.h"
#include "algorithms/plan_verifier.h"

namespace weft {
namespace {

const Collective kRingCollectives[] = {Collective::AllReduce, Collective::ReduceScatter, Collective::AllGather,
                                       Collective::Broadcast, Collective::Reduce};

RingOrder shuffledRing(int n) {
  // A non-identity order, as the topology search will produce.
  RingOrder ring = identityRing(n);
  for (int i = 0; i < n; ++i) std::swap(ring[i], ring[(i * 7 + 3) % n]);
  return ring;
}

TEST(PlanVerifier, RingPlansAreCorrectForOneToSixtyFourRanks) {
  for (int n = 1; n <= 64; ++n) {
    for (Collective collective : kRingCollectives) {
      bool rooted = collective == Collective::Broadcast || collective == Collective::Reduce;
      for (int root : rooted ? std::vector<int>{0, n / 2, n - 1} : std::vector<int>{-1}) {
        for (int channels : {1, 2}) {
          for (const RingOrder& ring : {identityRing(n), shuffledRing(n)}) {
            auto plan = buildRingPlan(collective, n, root, channels, ring);
            for (int slots : {kMinFifoSlots, 8}) {
              Status status = verifyPlan(*plan, slots, 2);
              ASSERT_TRUE(status.isOk()) << status.message();
            }
            // What communicators build: odd channels run the ring backwards.
            auto both = buildRingPlan(collective, n, root, channels,
                                      std::vector<RingOrder>{ring, RingOrder(ring.rbegin(), ring.rend())});
            Status status = verifyPlan(*both, kMinFifoSlots, 2);
            ASSERT_TRUE(status.isOk()) << status.message();
          }
        }
      }
    }
  }
}

TEST(PlanVerifier, OneShotPlansAreCorrectForOneToSixtyFourRanks) {
  for (int n = 1; n <= 64; ++n) {
    auto plan = buildOneShotPlan(n, 1);
    Status status = verifyPlan(*plan, kMinFifoSlots, 2);
    ASSERT_TRUE(status.isOk()) << status.message();
  }
}

TEST(PlanVerifier, TwoShotPlansAreCorrectForOneToSixtyFourRanks) {
  for (int n = 1; n <= 64; ++n)
    for (Collective collective : {Collective::AllReduce, Collective::ReduceScatter, Collective::AllGather})
      for (int channels : {1, 2}) {
        auto plan = buildTwoShotPlan(collective, n, channels);
        Status status = verifyPlan(*plan, kMinFifoSlots, 2);
        ASSERT_TRUE(status.isOk()) << status.message();
      }
}

Plan mutableRing(Collective collective, int n) { return *buildRingPlan(collective, n, 0, 1, identityRing(n)); }

TEST(PlanVerifier, RejectsAContributionCountedTwice) {
  Plan plan = mutableRing(Collective::AllReduce, 4);
  // Rank 0 adds its own input a second time on the way.
  auto& steps = plan.steps[0][0];
  for (Step& step : steps)
    if (step.op == StepOp::RecvReduceSend) step.src.chunk = steps.front().src.chunk;
  Status status = verifyPlan(plan);
  EXPECT_FALSE(status.isOk());
}

TEST(PlanVerifier, RejectsReducingDifferentBlocks) {
  Plan plan = mutableRing(Collective::ReduceScatter, 3);
  for (Step& step : plan.steps[1][0])
    if (step.op == StepOp::RecvReduceCopy) step.src.chunk = (step.src.chunk + 1) % 3;
  Status status = verifyPlan(plan);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("reduces block"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsAMissingContribution) {
  Plan plan = mutableRing(Collective::Reduce, 4);
  // The first rank of the chain sends nothing: the chain never completes.
  plan.steps[1][0].clear();
  Status status = verifyPlan(plan);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("deadlock"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsADeadlock) {
  Plan plan = *buildOneShotPlan(3, 1);
  // Receive before sending: every rank waits for the others.
  for (auto& rank : plan.steps) {
    auto& steps = rank[0];
    std::stable_partition(steps.begin(), steps.end(), [](const Step& s) { return s.op != StepOp::Send; });
  }
  Status status = verifyPlan(plan);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("deadlock"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsAnOutputChunkNeverWritten) {
  Plan plan = mutableRing(Collective::AllGather, 3);
  // Rank 2 forwards a block but does not keep it.
  for (Step& step : plan.steps[2][0])
    if (step.op == StepOp::RecvSend) step.op = StepOp::RecvReduceSend, step.src = {BufferId::Input, 2};
  Status status = verifyPlan(plan);
  EXPECT_FALSE(status.isOk());
}

TEST(PlanVerifier, RejectsWritingABlockIntoTheWrongChunk) {
  Plan plan = mutableRing(Collective::AllGather, 4);
  for (Step& step : plan.steps[0][0])
    if (step.op == StepOp::Recv) step.dst.chunk = (step.dst.chunk + 1) % 4;
  Status status = verifyPlan(plan);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("writes block"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RingsNeedTwoSlotsBecauseStepsReceiveAndSendTogether) {
  auto plan = buildRingPlan(Collective::AllReduce, 2, -1, 1, identityRing(2));
  Status status = verifyPlan(*plan, 1, 2);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("deadlock"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsAStepThatDeclaresTheWrongBlock) {
  // The executor sizes a step by its declared block; a wrong one would make
  // the two ends of a connector disagree on the length and wait forever.
  Plan plan = *buildTwoShotPlan(Collective::AllReduce, 3, 1);
  for (Step& step : plan.steps[1][0])
    if (step.dst.buffer == BufferId::Scratch) step.block = 0;
  Status status = verifyPlan(plan);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("declares block"), std::string::npos) << status.message();
}

TEST(PlanVerifier, DescribesPlansReadably) {
  auto plan = buildRingPlan(Collective::AllReduce, 2, -1, 1, identityRing(2));
  std::string text = plan->describe(0, 0);
  EXPECT_NE(text.find("recvReduceCopySend"), std::string::npos) << text;
}

}  // namespace
}  // namespace weft
