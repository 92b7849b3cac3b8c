// The verifier proves every registered algorithm's plans for 1..64 ranks
// (and on random ring orders up to 1024 ranks), and rejects plans that are
// broken in each way it claims to catch. Each rank's program is built on its
// own, as ranks do; the verifier runs them all together.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <set>
#include <utility>

#include "algorithms/plan.h"
#include "algorithms/plan_verifier.h"
#include "algorithms/registry.h"
#include "topology/search.h"

namespace weft {
namespace {

const Collective kCollectives[] = {Collective::AllReduce, Collective::ReduceScatter, Collective::AllGather,
                                   Collective::Broadcast, Collective::Reduce,        Collective::AllToAll,
                                   Collective::Gather,    Collective::Scatter};

bool rooted(Collective c) {
  return c == Collective::Broadcast || c == Collective::Reduce || c == Collective::Gather || c == Collective::Scatter;
}

RingOrder shuffledRing(int n) {
  // A non-identity order, as the topology search will produce.
  RingOrder ring = identityRing(n);
  for (int i = 0; i < n; ++i) std::swap(ring[i], ring[(i * 7 + 3) % n]);
  return ring;
}

PlanRequest request(Collective collective, int n, int root, int channels, std::vector<RingOrder> rings = {}) {
  PlanRequest r;
  r.collective = collective;
  r.nranks = n;
  r.root = root;
  r.nChannels = channels;
  r.rings = std::move(rings);
  return r;
}

// Every algorithm in the registry, every collective it supports, 1..64
// ranks, roots at both ends and in the middle, one and two channels, the
// identity ring and a shuffled one (with the reversed ring on odd channels,
// as communicators build them), FIFOs of 2 and 8 slots, and in place.
// WEFT_TEST_VERIFIER_RANKS lowers the 64 (the sanitizer builds run the same
// code on fewer ranks: their allocator makes the full sweep take minutes).
TEST(PlanVerifier, EveryRegisteredAlgorithmIsCorrectForOneToSixtyFourRanks) {
  int proven = 0;
  int maxRanks = 64;
  if (const char* limit = getenv("WEFT_TEST_VERIFIER_RANKS")) maxRanks = std::clamp(atoi(limit), 1, 64);
  for (const AlgorithmEntry& entry : algorithmRegistry()) {
    for (int n = 1; n <= maxRanks; ++n) {
      for (Collective collective : kCollectives) {
        if (!entry.supports(collective)) continue;
        for (int root : rooted(collective) ? std::vector<int>{0, n / 2, n - 1} : std::vector<int>{-1}) {
          for (int channels : {1, 2}) {
            RingOrder ring = shuffledRing(n);
            for (const auto& rings :
                 {std::vector<RingOrder>{}, std::vector<RingOrder>{ring, RingOrder(ring.rbegin(), ring.rend())}}) {
              PlanSet plans = buildPlanSet(entry, request(collective, n, root, channels, rings));
              // In place with the smallest FIFOs (aliasing does not depend on the depth).
              for (auto [inPlace, slots] :
                   {std::pair{false, kMinFifoSlots}, std::pair{false, 8}, std::pair{true, kMinFifoSlots}}) {
                Status status = verifyPlans(plans, slots, 2, inPlace);
                ASSERT_TRUE(status.isOk()) << entry.name << (inPlace ? " in place: " : ": ") << status.message();
                ++proven;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(proven, maxRanks * 15);
}

// Where every message of a copy collective goes by cross-memory attach,
// each rank cuts the call into wider slices when its own program's sends
// may all publish (Plan::everySendMayPublish); a receiver's slices must stay
// its sender's, so every rank of a plan set must answer alike. Rooted
// plans (broadcast, scatter, gather) pass tokens, which must not keep them
// from the wide slices, and a tree's inner nodes forward by address too.
TEST(PlanVerifier, EveryRankOfACopyCollectiveAgreesWhetherItsSendsMayPublish) {
  int checked = 0;
  for (const AlgorithmEntry& entry : algorithmRegistry()) {
    for (int n = 1; n <= 16; ++n) {
      for (Collective collective : kCollectives) {
        if (!entry.supports(collective) || collectiveReduces(collective)) continue;
        for (int root : rooted(collective) ? std::vector<int>{0, n / 2, n - 1} : std::vector<int>{-1}) {
          for (int channels : {1, 2}) {
            PlanSet plans = buildPlanSet(entry, request(collective, n, root, channels));
            for (const Plan& plan : plans)
              ASSERT_EQ(plan.everySendMayPublish(), plans.front().everySendMayPublish())
                  << entry.name << " " << collectiveName(collective) << " n=" << n << " root=" << root << ": rank "
                  << plan.rank << " disagrees with rank 0";
            // Tokens carry no data and do not count; all-to-all alone copies
            // into slots (in place, a block is overwritten while its peer
            // may still read it: direct.cc).
            EXPECT_EQ(plans.front().everySendMayPublish(), collective != Collective::AllToAll || n == 1)
                << entry.name << " " << collectiveName(collective) << " n=" << n << " root=" << root;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_GT(checked, 100);
}

// Nodes of L ranks each, M nodes, ranks of a node contiguous in the ring (as
// communicators order them) but shuffled inside it; the ring backwards on
// odd channels; every collective the entry builds, roots at both ends and
// in the middle, in and out of place. One node, one rank per node, and nodes of unequal size fall
// back to the flat ring, which must be proven too.
// Sites (WEFT_SITEID): 4 nodes of one rank in 2 sites. Grouped by node the
// hierarchical plan is the flat ring; grouped by site it is hierarchical:
// its rails cross between the sites (rank 0 with rank 2, rank 1 with 3),
// and it is proven like any other, every collective it builds.
TEST(PlanVerifier, SitesGroupTheHierarchicalPlans) {
  const AlgorithmEntry& entry = algorithmEntry(Algorithm::Hierarchical);
  auto peersOf = [](const Plan& plan) {
    std::set<int> peers;
    for (const Step& step : plan.steps)
      for (int peer : {static_cast<int>(step.sendPeer), static_cast<int>(step.recvPeer)})
        if (peer >= 0) peers.insert(peer);
    return peers;
  };
  for (Collective collective : kCollectives) {
    if (!entry.supports(collective)) continue;
    for (int root : rooted(collective) ? std::vector<int>{0, 3} : std::vector<int>{-1}) {
      PlanRequest r = request(collective, 4, root, 2, {});
      r.nodeOfRank = {0, 1, 2, 3};
      PlanSet byNode = buildPlanSet(entry, r);
      r.siteOfRank = {0, 0, 1, 1};
      PlanSet bySite = buildPlanSet(entry, r);
      Status status = verifyPlansEveryWay(bySite);
      ASSERT_TRUE(status.isOk()) << collectiveName(collective) << ": " << status.message();
      if (collective == Collective::AllReduce) {
        EXPECT_EQ(peersOf(byNode[0]), (std::set<int>{1, 3})) << "the flat ring";
        EXPECT_EQ(peersOf(bySite[0]), (std::set<int>{1, 2})) << "its site's rank, and its rail's";
        EXPECT_EQ(peersOf(bySite[1]), (std::set<int>{0, 3}));
      }
    }
  }
}

TEST(PlanVerifier, HierarchicalPlansAreCorrectForNodesOfEveryShape) {
  std::mt19937 rng(11);
  const AlgorithmEntry& entry = algorithmEntry(Algorithm::Hierarchical);
  auto check = [&](std::vector<int> nodeSizes) {
    std::vector<int> nodeOfRank;
    RingOrder ring;
    int next = 0;
    for (size_t j = 0; j < nodeSizes.size(); ++j) {
      std::vector<int> members;
      for (int i = 0; i < nodeSizes[j]; ++i) {
        nodeOfRank.push_back(static_cast<int>(j) * 10);
        members.push_back(next++);
      }
      std::shuffle(members.begin(), members.end(), rng);
      ring.insert(ring.end(), members.begin(), members.end());
    }
    int n = next;
    for (Collective collective : kCollectives) {
      if (!entry.supports(collective)) continue;
      for (int root : rooted(collective) ? std::vector<int>{0, n / 2, n - 1} : std::vector<int>{-1})
        for (int channels : {1, 2}) {
          PlanRequest r = request(collective, n, root, channels, {ring, RingOrder(ring.rbegin(), ring.rend())});
          r.nodeOfRank = nodeOfRank;
          PlanSet plans = buildPlanSet(entry, r);
          Status status = verifyPlansEveryWay(plans);
          ASSERT_TRUE(status.isOk()) << nodeSizes.size() << " nodes: " << status.message();
        }
    }
  };
  for (int m = 1; m <= 6; ++m)
    for (int l = 1; l <= 6; ++l) check(std::vector<int>(static_cast<size_t>(m), l));
  check({2, 3});
  check({4, 1, 4});
}

// Ring orders the topology search might produce on a large machine.
TEST(PlanVerifier, RingPlansAreCorrectOnRandomOrdersUpTo1024Ranks) {
  std::mt19937 rng(20261202);
  for (int n : {97, 256, 1024}) {
    RingOrder ring = identityRing(n);
    std::shuffle(ring.begin(), ring.end(), rng);
    for (Collective collective : {Collective::AllReduce, Collective::Broadcast}) {
      PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::Ring),
                                   request(collective, n, rooted(collective) ? n / 3 : -1, 1, {ring}));
      Status status = verifyPlans(plans, kMinFifoSlots, 1);
      ASSERT_TRUE(status.isOk()) << n << " ranks: " << status.message();
    }
  }
}

// A communicator's channel rings: the ring, its reverse, then the same with
// every node's stretch rotated one place more, as many pairs as the
// smallest node has ranks; ring plans over them are correct.
TEST(ChannelRings, EachPairEntersEveryNodeOneRankFurtherOn) {
  RingOrder ring = {0, 1, 2, 3, 4, 5, 6, 7};
  std::vector<int> nodes = {0, 0, 0, 0, 1, 1, 1, 1};
  std::vector<RingOrder> rings = channelRings(ring, nodes, 16);
  ASSERT_EQ(rings.size(), 8u);
  EXPECT_EQ(rings[0], ring);
  EXPECT_EQ(rings[1], RingOrder(ring.rbegin(), ring.rend()));
  EXPECT_EQ(rings[2], (RingOrder{1, 2, 3, 0, 5, 6, 7, 4}));
  EXPECT_EQ(rings[6], (RingOrder{3, 0, 1, 2, 7, 4, 5, 6}));
  EXPECT_EQ(rings[7], (RingOrder{6, 5, 4, 7, 2, 1, 0, 3}));
  EXPECT_EQ(channelRings(ring, nodes, 4).size(), 4u);
  EXPECT_EQ(channelRings(ring, nodes, 1), std::vector<RingOrder>{ring});
  EXPECT_EQ(channelRings(ring, {}, 16).size(), 2u);  // one node: the ring and its reverse
  // Nodes of 3 and 2 ranks, out of order in the ring: 2 rotations.
  std::vector<RingOrder> uneven = channelRings({4, 0, 2, 1, 3}, {0, 1, 0, 1, 0}, 16);
  ASSERT_EQ(uneven.size(), 4u);
  EXPECT_EQ(uneven[2], (RingOrder{0, 2, 4, 3, 1}));
  for (int channels : {1, 4, 8}) {
    PlanRequest r = request(Collective::AllReduce, 8, -1, channels, rings);
    r.nodeOfRank = nodes;
    for (const AlgorithmEntry* entry : {&algorithmEntry(Algorithm::Ring), &algorithmEntry(Algorithm::Hierarchical)}) {
      Status status = verifyPlans(buildPlanSet(*entry, r));
      EXPECT_TRUE(status.isOk()) << entry->name << " on " << channels << " channels: " << status.message();
    }
  }
}

TEST(PlanVerifier, EachRankBuildsOnlyItsOwnSmallProgram) {
  // A 16384-rank two-channel ring all-reduce: one rank's program is 2n-1
  // steps per channel (n in the reduce-scatter, n-1 in the all-gather), not
  // n times that.
  PlanRequest r = request(Collective::AllReduce, 16384, -1, 2);
  r.rank = 777;
  Plan plan = buildRingPlan(r);
  EXPECT_EQ(plan.rank, 777);
  EXPECT_EQ(plan.steps.size(), 2u * (2u * 16384u - 1u));
  EXPECT_LE(plan.bytes(), 4u << 20);
  EXPECT_EQ(plan.channel(1).size(), plan.steps.size() / 2);
}

PlanSet ringSet(Collective collective, int n) {
  return buildPlanSet(algorithmEntry(Algorithm::Ring), request(collective, n, 0, 1));
}

TEST(PlanVerifier, RejectsAContributionCountedTwice) {
  PlanSet plans = ringSet(Collective::AllReduce, 4);
  // Rank 0 adds its own input a second time on the way.
  std::span<Step> steps = plans[0].channel(0);
  for (Step& step : steps)
    if (step.op == StepOp::RecvReduceSend) step.src.chunk = steps.front().src.chunk;
  Status status = verifyPlans(plans);
  EXPECT_FALSE(status.isOk());
}

TEST(PlanVerifier, RejectsReducingDifferentBlocks) {
  PlanSet plans = ringSet(Collective::ReduceScatter, 3);
  for (Step& step : plans[1].channel(0))
    if (step.op == StepOp::RecvReduceCopy) step.src.chunk = (step.src.chunk + 1) % 3;
  Status status = verifyPlans(plans);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("reduces block"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsAMissingContribution) {
  PlanSet plans = ringSet(Collective::Reduce, 4);
  // The first rank of the chain sends nothing: the chain never completes.
  plans[1].steps.clear();
  plans[1].channelStart = {0, 0};
  Status status = verifyPlans(plans);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("deadlock"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsADeadlock) {
  PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::OneShot), request(Collective::AllReduce, 3, -1, 1));
  // Receive before sending: every rank waits for the others.
  for (Plan& plan : plans) {
    std::span<Step> steps = plan.channel(0);
    std::stable_partition(steps.begin(), steps.end(), [](const Step& s) { return s.op != StepOp::Send; });
  }
  Status status = verifyPlans(plans);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("deadlock"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsAnOutputChunkNeverWritten) {
  PlanSet plans = ringSet(Collective::AllGather, 3);
  // Rank 2 forwards a block but does not keep it.
  for (Step& step : plans[2].channel(0))
    if (step.op == StepOp::RecvSend) step.op = StepOp::RecvReduceSend, step.src = {BufferId::Input, 2};
  Status status = verifyPlans(plans);
  EXPECT_FALSE(status.isOk());
}

TEST(PlanVerifier, RejectsWritingABlockIntoTheWrongChunk) {
  PlanSet plans = ringSet(Collective::AllGather, 4);
  for (Step& step : plans[0].channel(0))
    if (step.op == StepOp::Recv) step.dst.chunk = (step.dst.chunk + 1) % 4;
  Status status = verifyPlans(plans);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("writes block"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RingsNeedTwoSlotsBecauseStepsReceiveAndSendTogether) {
  Status status = verifyPlans(ringSet(Collective::AllReduce, 2), 1, 2);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("deadlock"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsAStepThatDeclaresTheWrongBlock) {
  // The executor sizes a step by its declared block; a wrong one would make
  // the two ends of a connector disagree on the length and wait forever.
  PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::TwoShot), request(Collective::AllReduce, 3, -1, 1));
  for (Step& step : plans[1].channel(0))
    if (step.dst.buffer == BufferId::Scratch) step.block = 0;
  Status status = verifyPlans(plans);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("declares block"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsScratchThePlanDoesNotDeclare) {
  PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::TwoShot), request(Collective::AllReduce, 3, -1, 1));
  ASSERT_EQ(plans[1].scratchChunks, 1);
  plans[1].scratchChunks = 0;
  Status status = verifyPlans(plans);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("uses scratch chunk 0, but its plan declares 0"), std::string::npos)
      << status.message();
}

TEST(PlanVerifier, RejectsProgramsOfDifferentCalls) {
  PlanSet plans = ringSet(Collective::AllReduce, 3);
  plans[2] = ringSet(Collective::AllGather, 3)[2];
  Status status = verifyPlans(plans);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("disagrees with rank 0's about the call"), std::string::npos) << status.message();
}

// In place, input chunk j and output chunk j are one piece of memory: a
// rank that receives into output chunk 1 before it sends input chunk 1 sends
// what it received. Out of place the same program is correct.
TEST(PlanVerifier, InPlaceRejectsReadingInputThatAnOutputWriteReplaced) {
  PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::Direct), request(Collective::AllToAll, 2, -1, 1));
  std::span<Step> steps = plans[0].channel(0);
  ASSERT_EQ(steps.size(), 3u);  // copy own block, send, receive
  std::swap(steps[1], steps[2]);
  EXPECT_TRUE(verifyPlans(plans, kMinFifoSlots, 2, false).isOk());
  Status status = verifyPlans(plans, kMinFifoSlots, 2, true);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("rank 0 reads input chunk 1 in iteration 0 after it was overwritten"),
            std::string::npos)
      << status.message();
}

// All-to-all sends copy into the slot: by address, the receiver of input
// chunk j could still be reading it when, in place, the sender receives its
// peer's block into the same memory. Nothing orders the two (each rank sends
// before it receives), although in this run rank 1 happens to read first.
TEST(PlanVerifier, RejectsOverwritingMemoryLentByAddressWithoutAMessageOrderingIt) {
  PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::Direct), request(Collective::AllToAll, 2, -1, 1));
  for (Step& step : plans[0].channel(0))
    if (step.op == StepOp::Send) step.flags |= kMayPublishAddress;
  EXPECT_TRUE(verifyPlans(plans, kMinFifoSlots, 2, false).isOk());
  Status status = verifyPlans(plans, kMinFifoSlots, 2, true);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("overwrites output chunk 1 in iteration 0 while rank 1 may still read it by address"),
            std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("no message orders the write after its read"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsPublishingScratchByAddress) {
  PlanSet plans = ringSet(Collective::AllReduce, 3);
  bool changed = false;
  for (Step& step : plans[1].channel(0))
    if (step.op == StepOp::RecvReduceSend) {
      step.dst = {BufferId::Scratch, 0};
      step.flags |= kMayPublishAddress;
      changed = true;
    }
  ASSERT_TRUE(changed);
  plans[1].scratchChunks = 1;
  Status status = verifyPlans(plans);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("publishes scratch by address"), std::string::npos) << status.message();
}

// A tree node with two children reduces both in one fan-in step (the
// double binary tree's inner nodes, and rooted trees' with two children).
TEST(PlanVerifier, TreeNodesWithTwoChildrenFanIn) {
  for (Collective collective : {Collective::AllReduce, Collective::Reduce}) {
    PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::Tree), request(collective, 7, 0, 1));
    int fanIns = 0;
    for (const Plan& plan : plans)
      for (const Step& step : plan.channel(0)) fanIns += stepFansIn(step) ? 1 : 0;
    EXPECT_GT(fanIns, 0) << collectiveName(collective);
    EXPECT_TRUE(verifyPlansEveryWay(plans).isOk());
  }
  Plan plan = buildPlanSet(algorithmEntry(Algorithm::Tree), request(Collective::Reduce, 3, 0, 1))[0];
  EXPECT_NE(plan.describe(0).find("from 1,2"), std::string::npos) << plan.describe(0);
}

// A channel in passes runs each pass over every slice before the next.
TEST(StepWalk, RunsEachPassOverEverySliceBeforeTheNext) {
  Step steps[4];
  steps[2].flags = kStartsPass;
  std::string order;
  for (StepWalk walk(4, 3); !walk.done(4); walk.advance(steps, 4, 3))
    order += "ABCD"[walk.step] + std::to_string(walk.slice) + " ";
  EXPECT_EQ(order, "A0 B0 A1 B1 A2 B2 C0 D0 C1 D1 C2 D2 ");
  steps[2].flags = 0;
  order.clear();
  StepWalk walk(4, 2);
  for (; !walk.done(4); walk.advance(steps, 4, 2)) order += "ABCD"[walk.step] + std::to_string(walk.slice) + " ";
  EXPECT_EQ(order, "A0 B0 C0 D0 A1 B1 C1 D1 ");
  EXPECT_EQ(walk.taken, 8u);
  EXPECT_TRUE(StepWalk(4, 0).done(4));  // no slices: nothing runs
}

// A pass cut into stages runs them software-pipelined: in round t, stage p
// for slice t-p, the oldest slice first; a slice's steps keep their order.
TEST(StepWalk, RunsAPassesStagesSoftwarePipelined) {
  Step steps[5];
  steps[1].flags = kStartsStage;  // stages: A | B C | D, then a pass E
  steps[3].flags = kStartsStage;
  steps[4].flags = kStartsPass;
  std::string order;
  StepWalk walk(5, 3);
  for (; !walk.done(5); walk.advance(steps, 5, 3)) order += "ABCDE"[walk.step] + std::to_string(walk.slice) + " ";
  EXPECT_EQ(order, "A0 B0 C0 A1 D0 B1 C1 A2 D1 B2 C2 D2 E0 E1 E2 ");
  EXPECT_EQ(walk.taken, 15u);
  // One slice: the stages in order, as an unstaged pass.
  order.clear();
  for (StepWalk one(5, 1); !one.done(5); one.advance(steps, 5, 1))
    order += "ABCDE"[one.step] + std::to_string(one.slice);
  EXPECT_EQ(order, "A0B0C0D0E0");
  // A stage flag on a pass's first step starts nothing new.
  steps[0].flags = kStartsStage;
  order.clear();
  for (StepWalk two(5, 2); !two.done(5); two.advance(steps, 5, 2))
    order += "ABCDE"[two.step] + std::to_string(two.slice);
  EXPECT_EQ(order, "A0B0C0A1D0B1C1D1E0E1");
}

// The site-grouped (and node-grouped) all-reduce runs in three stages, cut
// at the rail's first and last receive, so that a slice's work inside the
// node overlaps the previous slice's transfer across; the verifier proves
// it on the shallowest FIFOs for 2-4 groups, in place and not.
TEST(PlanVerifier, TheHierarchicalAllReduceOverlapsTheRailWithWorkInsideTheNode) {
  for (int m = 2; m <= 4; ++m) {
    for (int l = 2; l <= 3; ++l) {
      int n = m * l;
      PlanRequest base = request(Collective::AllReduce, n, -1, 1);
      base.nodeOfRank.clear();
      for (int r = 0; r < n; ++r) base.nodeOfRank.push_back(r / l);
      std::vector<Plan> plans = buildPlanSet(algorithmEntry(Algorithm::Hierarchical), base);
      for (const Plan& plan : plans) {
        int cuts = 0;
        for (const Step& step : plan.channel(0)) cuts += (step.flags & kStartsStage) != 0;
        EXPECT_EQ(cuts, 2) << plan.describe(0);
      }
      for (int slices : {1, 2, 7})
        for (bool inPlace : {false, true}) {
          Status status = verifyPlans(plans, kMinFifoSlots, slices, inPlace);
          EXPECT_TRUE(status.isOk()) << m << " nodes of " << l << ", " << slices << " slices: " << status.message();
        }
      // A rank that walks the same steps unstaged takes its node peers'
      // messages in another order: the verifier finds it.
      std::vector<Plan> mixed = plans;
      for (Step& step : mixed[0].channel(0)) step.flags &= static_cast<uint8_t>(~kStartsStage);
      EXPECT_FALSE(verifyPlans(mixed, 8, 2).isOk()) << m << " nodes of " << l;
    }
  }
}

// The double tree's all-reduce runs in four passes, each over every slice:
// up tree 0, up tree 1, down tree 0, down tree 1. The verifier proves it
// for many slices on the shallowest FIFOs, and the same steps in one pass
// still verify (the order is a matter of speed, not of correctness).
TEST(PlanVerifier, TheTreeAllReduceRunsEachTreeAndDirectionAsAPass) {
  for (int n : {2, 3, 7, 16, 33}) {
    PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::Tree), request(Collective::AllReduce, n, -1, 1));
    for (const Plan& plan : plans) {
      int pass = 0;
      for (const Step& step : plan.channel(0)) {
        if (step.flags & kStartsPass) ++pass;
        // Up: reduce or send the input; down: write the output or pass it on.
        bool up = stepReduces(step.op) || step.src.buffer == BufferId::Input;
        EXPECT_EQ(up, pass < 2) << plan.describe(0);
        EXPECT_EQ(step.block, pass % 2) << plan.describe(0);
      }
      EXPECT_EQ(pass, 3) << plan.describe(0);
    }
    for (int slices : {1, 5})
      for (bool inPlace : {false, true}) {
        Status status = verifyPlans(plans, kMinFifoSlots, slices, inPlace);
        EXPECT_TRUE(status.isOk()) << n << " ranks, " << slices << " slices: " << status.message();
      }
    for (Plan& plan : plans)
      for (Step& step : plan.channel(0)) step.flags &= static_cast<uint8_t>(~kStartsPass);
    EXPECT_TRUE(verifyPlans(plans, kMinFifoSlots, 5).isOk());
  }
  EXPECT_NE(buildPlanSet(algorithmEntry(Algorithm::Tree), request(Collective::AllReduce, 3, -1, 1))[0].describe(0).find(
                "every slice, then:"),
            std::string::npos);
}

// On two channels or more, channel c moves its share of the whole buffer
// up tree c % 2 and back down, in two passes, and talks only to that tree's
// parent and children: the two trees never wait on each other.
TEST(PlanVerifier, TheTreeAllReduceOnTwoChannelsRunsOneTreePerChannel) {
  for (int n : {2, 3, 7, 16, 33}) {
    DoubleTree trees = buildDoubleTree(n);
    for (int channels : {2, 3}) {
      PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::Tree), request(Collective::AllReduce, n, -1, channels));
      for (const Plan& plan : plans) {
        ASSERT_EQ(plan.nBlocks, 1) << plan.describe(0);
        for (int c = 0; c < channels; ++c) {
          int t = c % 2, parent = trees.parent[t][plan.rank];
          std::set<int> tree(trees.children[t][plan.rank].begin(), trees.children[t][plan.rank].end());
          if (parent >= 0) tree.insert(parent);
          int passes = 1;
          for (const Step& step : plan.channel(c)) {
            if (step.flags & kStartsPass) ++passes;
            EXPECT_EQ(step.block, 0) << plan.describe(c);
            for (int peer :
                 {static_cast<int>(step.sendPeer), static_cast<int>(step.recvPeer), static_cast<int>(step.recvPeer2)})
              if (peer >= 0) EXPECT_TRUE(tree.count(peer)) << n << " ranks, channel " << c << ": " << plan.describe(c);
          }
          EXPECT_EQ(passes, 2) << plan.describe(c);
        }
      }
      for (int slices : {1, 5})
        for (bool inPlace : {false, true}) {
          Status status = verifyPlans(plans, kMinFifoSlots, slices, inPlace);
          EXPECT_TRUE(status.isOk()) << n << " ranks, " << channels << " channels, " << slices
                                     << " slices: " << status.message();
        }
    }
  }
}

// Passes that run ahead of what a FIFO can hold deadlock, and the verifier
// says so: a 2-rank ring all-gather whose receive is a pass of its own has
// both ranks send all 5 slices first; 8-slot FIFOs hold them, 2-slot ones
// leave both waiting to send the third.
TEST(PlanVerifier, RejectsPassesThatOutrunTheFifos) {
  PlanSet plans = ringSet(Collective::AllGather, 2);
  EXPECT_TRUE(verifyPlans(plans, kMinFifoSlots, 5).isOk());
  for (Plan& plan : plans) plan.channel(0)[plan.channel(0).size() - 1].flags |= kStartsPass;
  Status deep = verifyPlans(plans, 8, 5);
  EXPECT_TRUE(deep.isOk()) << deep.message() << "\n" << plans[0].describe(0);
  Status status = verifyPlans(plans, kMinFifoSlots, 5);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("deadlock"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("slice 2"), std::string::npos) << status.message();
}

TEST(PlanVerifier, RejectsAFanInFromOnePeerTwiceOrOnAStepThatDoesNotReduce) {
  PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::Tree), request(Collective::Reduce, 3, 0, 1));
  PlanSet twice = plans;
  for (Step& step : twice[0].channel(0))
    if (stepFansIn(step)) step.recvPeer2 = step.recvPeer;
  Status status = verifyPlans(twice);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("fans in from invalid peer"), std::string::npos) << status.message();
  PlanSet notReducing = plans;
  for (Step& step : notReducing[1].channel(0))
    if (step.op == StepOp::Send) step.recvPeer2 = 2;
  status = verifyPlans(notReducing);
  ASSERT_FALSE(status.isOk());
  EXPECT_NE(status.message().find("cannot fan in"), std::string::npos) << status.message();
}

TEST(PlanVerifier, DescribesPlansReadably) {
  Plan plan = ringSet(Collective::AllReduce, 2)[0];
  std::string text = plan.describe(0);
  EXPECT_NE(text.find("recvReduceCopySend"), std::string::npos) << text;
  EXPECT_NE(text.find("by-address"), std::string::npos) << text;
}

TEST(AlgorithmRegistry, NamesAreFoundInAnyCaseAndListed) {
  ASSERT_NE(findAlgorithm("TwoShot"), nullptr);
  EXPECT_EQ(findAlgorithm("TwoShot")->id, Algorithm::TwoShot);
  EXPECT_EQ(findAlgorithm("RING")->id, Algorithm::Ring);
  EXPECT_EQ(findAlgorithm("rin"), nullptr);
  EXPECT_EQ(findAlgorithm("TREE")->id, Algorithm::Tree);
  EXPECT_EQ(findAlgorithm("rails"), nullptr);
  EXPECT_EQ(algorithmNames(), "ring, oneshot, twoshot, tree, direct, hierarchical");
  for (const AlgorithmEntry& entry : algorithmRegistry()) {
    EXPECT_EQ(&algorithmEntry(entry.id), &entry);
    EXPECT_STREQ(algorithmName(entry.id), entry.name);
  }
  EXPECT_EQ(supportedCollectives(algorithmEntry(Algorithm::OneShot)), "AllReduce");
}

// Which sends may publish by address is the plan's to say: never in a
// one-shot plan; in a ring reduce-scatter, not for partial sums (the output
// holds one block and has no home for them).
TEST(PlanVerifier, PlansSayWhichSendsMayGoByAddress) {
  for (const Plan& plan : buildPlanSet(algorithmEntry(Algorithm::OneShot), request(Collective::AllReduce, 4, -1, 1)))
    for (const Step& step : plan.steps) EXPECT_EQ(step.flags & kMayPublishAddress, 0);
  for (const Plan& plan : ringSet(Collective::ReduceScatter, 4))
    for (const Step& step : plan.steps)
      if (step.op == StepOp::RecvReduceSend) EXPECT_EQ(step.flags & kMayPublishAddress, 0);
  for (const Plan& plan : ringSet(Collective::AllReduce, 4))
    for (const Step& step : plan.steps)
      if (step.op == StepOp::RecvReduceSend) {
        EXPECT_NE(step.flags & kMayPublishAddress, 0);
        EXPECT_EQ(step.dst.buffer, BufferId::Output);
        EXPECT_EQ(step.dst.chunk, step.src.chunk);
      }
}

// A copy collective's sender hands its block on before copying it into its
// own output, so that the copy overlaps the receive. In place the copy is
// onto the same memory, which the executors skip: no overwrite of what the
// successor may be reading by address. Out of place it writes elsewhere.
TEST(PlanVerifier, TheOwnBlockLeavesBeforeItsCopyAndACopyOntoItselfOverwritesNothing) {
  for (Collective c : {Collective::AllGather, Collective::Broadcast}) {
    for (Algorithm a : {Algorithm::Ring, Algorithm::Tree}) {
      if (!algorithmEntry(a).supports(c)) continue;
      PlanSet plans = buildPlanSet(algorithmEntry(a), request(c, 4, c == Collective::Broadcast ? 0 : -1, 1));
      std::span<const Step> steps = plans[0].channel(0);
      auto send = std::find_if(steps.begin(), steps.end(), [](const Step& s) { return s.op == StepOp::Send; });
      auto copy = std::find_if(steps.begin(), steps.end(), [](const Step& s) { return s.op == StepOp::Copy; });
      ASSERT_NE(send, steps.end());
      ASSERT_NE(copy, steps.end());
      EXPECT_LT(send - steps.begin(), copy - steps.begin()) << collectiveName(c) << " " << algorithmEntry(a).name;
      EXPECT_NE(send->flags & kMayPublishAddress, 0);
      for (bool inPlace : {false, true}) EXPECT_TRUE(verifyPlans(plans, kMinFifoSlots, 2, inPlace).isOk());
    }
  }
}

// All-to-all's sends may publish their blocks only out of place: in place a
// rank overwrites block j with rank j's block while rank j may still be
// reading it. The verifier proves both variants with the out-of-place flag,
// and finds the in-place overwrite where the sends publish unconditionally.
TEST(PlanVerifier, AllToAllPublishesOnlyOutOfPlace) {
  for (int n : {2, 3, 4, 7}) {
    PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::Direct), request(Collective::AllToAll, n, -1, 1));
    int sends = 0;
    for (const Step& step : plans[0].channel(0))
      if (step.op == StepOp::Send) {
        EXPECT_NE(step.flags & kMayPublishOutOfPlace, 0);
        EXPECT_EQ(step.flags & kMayPublishAddress, 0);
        EXPECT_TRUE(stepMayPublish(step.flags, false));
        EXPECT_FALSE(stepMayPublish(step.flags, true));
        ++sends;
      }
    EXPECT_EQ(sends, n - 1);
    for (bool inPlace : {false, true}) {
      Status status = verifyPlans(plans, kMinFifoSlots, 2, inPlace);
      EXPECT_TRUE(status.isOk()) << "n=" << n << (inPlace ? " in place: " : " out of place: ") << status.message();
    }
    for (Plan& plan : plans)
      for (Step& step : plan.steps)
        if (step.op == StepOp::Send) step.flags |= kMayPublishAddress;
    EXPECT_TRUE(verifyPlans(plans, kMinFifoSlots, 2, false).isOk()) << "n=" << n;
    Status inPlace = verifyPlans(plans, kMinFifoSlots, 2, true);
    EXPECT_FALSE(inPlace.isOk()) << "n=" << n << ": publishing in place must be found";
  }
}

}  // namespace
}  // namespace weft
