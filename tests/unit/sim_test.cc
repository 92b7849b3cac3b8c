// weft-sim's replay of weft's own plans: closed-form times on one-link
// machines, pipelining, the FIFO depth, link sharing, and a deadlocking
// plan reported as one.
#include <gtest/gtest.h>

#include "algorithms/registry.h"
#include "sim/replay.h"

namespace weft::sim {
namespace {

// Links of latency L and bandwidth B, copies and reductions free, no cost
// per step: what remains is the plan's communication.
MachineModel linksOnly(int nranks, double latency, double gbps, size_t slotBytes) {
  MachineModel m;
  m.nranks = nranks;
  m.intraNode = {latency, gbps};
  m.network = {latency, gbps};
  m.copyGBps = 1e12;
  m.reduceGBps = 1e12;
  m.stepMicros = 0;
  m.slotBytes = slotBytes;
  return m;
}

PlanSet plansFor(Algorithm algorithm, Collective collective, int nranks, int root = -1) {
  PlanRequest request;
  request.collective = collective;
  request.nranks = nranks;
  request.root = root;
  return buildPlanSet(algorithmEntry(algorithm), request);
}

// 2 ranks, ring all-reduce of S bytes in one slice per block: each rank
// sends S/2, receives and reduces, sends the result, receives the other
// half: 2 hops, each L + (S/2)/B.
TEST(Sim, TwoRankRingAllReduceTakesItsClosedFormTime) {
  const size_t count = 16384;  // 64 KiB of floats: 32 KiB per block, one slot
  MachineModel m = linksOnly(2, 5.0, 2.0, 128 * 1024);
  ReplayResult r;
  ASSERT_TRUE(replay(plansFor(Algorithm::Ring, Collective::AllReduce, 2), count, weftFloat32, m, &r).isOk());
  double half = count * 4 / 2 / (2.0 * 1e3);  // microseconds for S/2 at 2 GB/s
  EXPECT_NEAR(r.micros, 2 * (5.0 + half), 1e-9);
  EXPECT_EQ(r.messages, 4u);
  EXPECT_DOUBLE_EQ(r.busiestLinkBytes, count * 4.0);  // each direction carries S
}

// A ring broadcast over 3 ranks in k slices of s bytes pipelines: the last
// slice arrives after (k+1) transfer times and 2 latencies (the tokens that
// go first cost a latency each but wait for no link).
TEST(Sim, ABroadcastChainPipelinesItsSlices) {
  const size_t slot = 4096, k = 4;
  MachineModel m = linksOnly(3, 3.0, 1.0, slot);
  ReplayResult r;
  ASSERT_TRUE(replay(plansFor(Algorithm::Ring, Collective::Broadcast, 3, 0), k * slot / 4, weftFloat32, m, &r).isOk());
  double transfer = slot / (1.0 * 1e3);
  EXPECT_NEAR(r.micros, (k + 1) * transfer + 2 * 3.0, 1e-9);
}

// With one slot per FIFO a sender waits for the receiver to free it, so the
// same chain takes longer than with eight.
TEST(Sim, AShallowFifoHoldsTheSenderBack) {
  MachineModel deep = linksOnly(3, 20.0, 1.0, 4096);
  MachineModel shallow = deep;
  shallow.nSlots = 1;
  ReplayResult a, b;
  PlanSet plans = plansFor(Algorithm::Ring, Collective::Broadcast, 3, 0);
  ASSERT_TRUE(replay(plans, 16 * 1024, weftFloat32, deep, &a).isOk());
  ASSERT_TRUE(replay(plans, 16 * 1024, weftFloat32, shallow, &b).isOk());
  EXPECT_GT(b.micros, a.micros * 1.5);
}

// Two nodes of two ranks: the network link is shared by the node's ranks,
// so the flat ring's node boundary carries 1.5 S and the hierarchical plan S.
TEST(Sim, TheNetworkLinkOfANodeIsSharedAndHierarchicalCarriesLess) {
  MachineModel m = linksOnly(4, 1.0, 100.0, 128 * 1024);
  m.network = {10.0, 1.0};
  m.nodeOfRank = {0, 0, 1, 1};
  const size_t count = 1 << 20;  // 4 MiB
  PlanRequest request;
  request.collective = Collective::AllReduce;
  request.nranks = 4;
  request.nodeOfRank = m.nodeOfRank;
  ReplayResult ring, hier;
  ASSERT_TRUE(replay(buildPlanSet(algorithmEntry(Algorithm::Ring), request), count, weftFloat32, m, &ring).isOk());
  ASSERT_TRUE(
      replay(buildPlanSet(algorithmEntry(Algorithm::Hierarchical), request), count, weftFloat32, m, &hier).isOk());
  EXPECT_NEAR(ring.busiestLinkBytes, 1.5 * count * 4, count * 4 * 0.01);
  EXPECT_NEAR(hier.busiestLinkBytes, 1.0 * count * 4, count * 4 * 0.01);
  EXPECT_LT(hier.micros, ring.micros);
  EXPECT_NE(ring.busiestLink.find("node"), std::string::npos) << ring.busiestLink;
}

// Every registered algorithm's plans replay to completion for every
// collective it builds.
TEST(Sim, EveryRegisteredPlanReplays) {
  MachineModel m;
  for (const AlgorithmEntry& entry : algorithmRegistry())
    for (int c = 0; c <= static_cast<int>(Collective::Scatter); ++c) {
      auto collective = static_cast<Collective>(c);
      if (!entry.supports(collective)) continue;
      for (int n : {1, 2, 5}) {
        ReplayResult r;
        Status s = replay(plansFor(entry.id, collective, n, collectiveHasRoot(collective) ? n - 1 : -1), 100003,
                          weftFloat32, m, &r);
        ASSERT_TRUE(s.isOk()) << entry.name << " " << collectiveName(collective) << ": " << s.message();
        if (n > 1) EXPECT_GT(r.micros, 0) << entry.name << " " << collectiveName(collective);
      }
    }
}

TEST(Sim, ADeadlockingPlanIsReportedWhereItWaits) {
  PlanSet plans = plansFor(Algorithm::Ring, Collective::AllReduce, 2);
  for (Plan& plan : plans) plan.channel(0)[0].op = StepOp::Recv;  // both receive first
  for (Plan& plan : plans) plan.channel(0)[0].recvPeer = static_cast<int16_t>(1 - plan.rank);
  for (Plan& plan : plans) plan.channel(0)[0].sendPeer = -1;
  MachineModel m;
  ReplayResult r;
  Status s = replay(plans, 1024, weftFloat32, m, &r);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("deadlocked: rank 0 channel 0 at recv"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace weft::sim
