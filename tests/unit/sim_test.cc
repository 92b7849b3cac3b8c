// weft-sim's replay of weft's own plans: closed-form times on one-link
// machines, pipelining, the FIFO depth, link sharing, and a deadlocking
// plan reported as one.
#include <gtest/gtest.h>

#include "algorithms/registry.h"
#include "sim/cluster.h"
#include "sim/kv_cache.h"
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

PlanSet plansFor(Algorithm algorithm, Collective collective, int nranks, int root = -1, int channels = 1) {
  PlanRequest request;
  request.collective = collective;
  request.nranks = nranks;
  request.root = root;
  request.nChannels = channels;
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

// The tree all-reduce's slices follow one another through the trees (a
// pass per tree and direction): on 31 ranks (depth 4) with links of 10 us, sixteen
// slices per half cost the first slice's round trip plus a few hops each,
// not sixteen round trips.
TEST(Sim, TreeSlicesPipelineThroughTheTree) {
  const size_t slot = 4096;
  MachineModel m = linksOnly(31, 10.0, 1e6, slot);
  PlanSet plans = plansFor(Algorithm::Tree, Collective::AllReduce, 31);
  ReplayResult one, sixteen;
  ASSERT_TRUE(replay(plans, 2 * slot / 4, weftFloat32, m, &one).isOk());
  ASSERT_TRUE(replay(plans, 2 * 16 * slot / 4, weftFloat32, m, &sixteen).isOk());
  // One slice per tree: 4 hops up and 4 down, tree 1's up a few hops
  // behind tree 0's (3 depth hops in all, the cost model's count).
  EXPECT_GE(one.micros, 8 * 10.0);
  EXPECT_LE(one.micros, 12.5 * 10.0);
  // Each later slice adds its few steps on the busiest rank.
  EXPECT_LE(sixteen.micros, one.micros + 15 * 4 * 10.0) << one.micros;
  EXPECT_LT(sixteen.micros, 0.5 * 16 * one.micros) << one.micros;
}

// On two channels each tree has a channel of its own: 4 KiB, one half-slot
// slice a channel (or a tree), crosses 31 ranks (depth 4) in 2 depth hops,
// where one channel carrying both trees takes about 3.
TEST(Sim, TwoChannelsRunTheTwoTreesApart) {
  const size_t slot = 4096;
  MachineModel m = linksOnly(31, 10.0, 1e6, slot);
  ReplayResult one, two;
  ASSERT_TRUE(
      replay(plansFor(Algorithm::Tree, Collective::AllReduce, 31, -1, 1), slot / 4, weftFloat32, m, &one).isOk());
  ASSERT_TRUE(
      replay(plansFor(Algorithm::Tree, Collective::AllReduce, 31, -1, 2), slot / 4, weftFloat32, m, &two).isOk());
  EXPECT_GE(two.micros, 8 * 10.0);
  EXPECT_LE(two.micros, 9 * 10.0) << "one channel: " << one.micros;
  EXPECT_GE(one.micros, 11 * 10.0);
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

// One message per listed pair (sender, receiver), every other rank idle:
// each flow's time shows what share of the links it got.
PlanSet pointToPoint(int n, const std::vector<std::pair<int, int>>& pairs) {
  PlanSet plans;
  for (int r = 0; r < n; ++r) {
    Plan idle = buildPointToPointPlan(Collective::Send, n, r, (r + 1) % n);
    idle.steps.clear();
    idle.channelStart = {0, 0};
    plans.push_back(idle);
  }
  for (auto [from, to] : pairs) {
    plans[static_cast<size_t>(from)] = buildPointToPointPlan(Collective::Send, n, from, to);
    plans[static_cast<size_t>(to)] = buildPointToPointPlan(Collective::Recv, n, to, from);
  }
  return plans;
}

MachineModel nodesOf(int nodes, int perNode, double latency, double gbps, size_t bytes) {
  MachineModel m = linksOnly(nodes * perNode, latency, 1e6, bytes);
  m.network = {latency, gbps};
  for (int r = 0; r < m.nranks; ++r) m.nodeOfRank.push_back(r / perNode);
  return m;
}

// Two ranks of a node send to the two ranks of another at once: with one
// NIC a node they share it (half each), with a NIC per rank (rails) each
// has its own.
TEST(Sim, FlowsShareANicAndRailsSeparateThem) {
  const size_t bytes = 1 << 20;
  const double L = 3.0, B = 2.0, S = bytes / (B * 1e3);
  MachineModel m = nodesOf(2, 2, L, B, bytes);
  PlanSet plans = pointToPoint(4, {{0, 2}, {1, 3}});
  ReplayResult one, rails;
  ASSERT_TRUE(replay(plans, bytes / 4, weftFloat32, m, &one).isOk());
  EXPECT_NEAR(one.rankMicros[2], L + 2 * S, 1e-6);
  EXPECT_NEAR(one.rankMicros[3], L + 2 * S, 1e-6);
  m.nicsPerNode = 2;
  ASSERT_TRUE(replay(plans, bytes / 4, weftFloat32, m, &rails).isOk());
  EXPECT_NEAR(rails.micros, L + S, 1e-6);
}

// Max-min fairness on an oversubscribed fat tree: leaves of 2 nodes with
// uplinks a quarter of their nodes' NICs (B/4). Two flows leave leaf 0 and
// share its uplink (B/8 each); one of them shares node 0's NIC with a flow
// that stays in the leaf, which gets what the other cannot use (7B/8, not
// half), and the leaving flows end at the uplink's pace.
TEST(Sim, SharingIsMaxMinFairOnAnOversubscribedFabric) {
  const size_t bytes = 1 << 20;
  const double L = 2.0, B = 4.0, S = bytes / (B * 1e3);
  MachineModel m = nodesOf(4, 2, L, B, bytes);
  m.nodesPerLeaf = 2;
  m.oversubscription = 8;
  PlanSet plans = pointToPoint(8, {{0, 2}, {1, 4}, {3, 6}});
  ReplayResult r;
  ASSERT_TRUE(replay(plans, bytes / 4, weftFloat32, m, &r).isOk());
  EXPECT_NEAR(r.rankMicros[2], L + S * 8 / 7, 1e-6);
  EXPECT_NEAR(r.rankMicros[4], L + 8 * S, 1e-6);
  EXPECT_NEAR(r.rankMicros[6], L + 8 * S, 1e-6);
  EXPECT_NE(r.busiestLink.find("leaf 0 rail 0 uplink"), std::string::npos) << r.busiestLink;
  EXPECT_NEAR(r.busiestLinkUtilisation, 8 * S / (L + 8 * S), 1e-9);
  // Without oversubscription the uplink is no bottleneck: the NIC is, shared half and half.
  m.oversubscription = 1;
  ASSERT_TRUE(replay(plans, bytes / 4, weftFloat32, m, &r).isOk());
  EXPECT_NEAR(r.rankMicros[2], L + 2 * S, 1e-6);
  EXPECT_NEAR(r.rankMicros[6], L + S, 1e-6);
}

// Between sites a message also crosses the WAN link: its latency adds to
// the network's and its bandwidth bounds the flow.
TEST(Sim, ACrossSiteMessagePaysTheWan) {
  const size_t bytes = 1 << 20;
  MachineModel m = nodesOf(6, 1, 10.0, 10.0, bytes);
  m.siteOfNode = {0, 0, 0, 1, 1, 1};
  m.wan = {5000.0, 0.125};
  PlanSet plans = pointToPoint(6, {{0, 1}, {2, 3}});
  ReplayResult r;
  ASSERT_TRUE(replay(plans, bytes / 4, weftFloat32, m, &r).isOk());
  EXPECT_NEAR(r.rankMicros[1], 10.0 + bytes / 10e3, 1e-6);
  EXPECT_NEAR(r.rankMicros[3], 10.0 + 5000.0 + bytes / 0.125e3, 1e-6);
  EXPECT_EQ(r.busiestLink, "site 0 -> site 1");
}

// Two nodes of a site sending to the other site at once share one
// site-to-site link; with a WAN link per node (each node's traffic to the
// far site shaped on its own) each has the whole rate.
TEST(Sim, WanLinksPerNodeCarryEachNodesFlowAtTheFullRate) {
  const size_t bytes = 1 << 20;
  MachineModel m = nodesOf(4, 1, 10.0, 10.0, bytes);
  m.siteOfNode = {0, 0, 1, 1};
  m.wan = {5000.0, 0.125};
  PlanSet plans = pointToPoint(4, {{0, 2}, {1, 3}});
  ReplayResult shared, own;
  ASSERT_TRUE(replay(plans, bytes / 4, weftFloat32, m, &shared).isOk());
  EXPECT_NEAR(shared.rankMicros[2], 10.0 + 5000.0 + 2 * bytes / 0.125e3, 1e-6);
  m.wanPerNode = true;
  ASSERT_TRUE(replay(plans, bytes / 4, weftFloat32, m, &own).isOk());
  EXPECT_NEAR(own.rankMicros[2], 10.0 + 5000.0 + bytes / 0.125e3, 1e-6);
  EXPECT_NEAR(own.rankMicros[3], 10.0 + 5000.0 + bytes / 0.125e3, 1e-6);
  EXPECT_TRUE(own.busiestLink == "node 0 -> site 1" || own.busiestLink == "node 1 -> site 1") << own.busiestLink;
}

// Two sites of two nodes: the site-grouped all-reduce runs in stages, so
// that a node reduces and gathers inside its site while the previous slice
// crosses the site link; walked unstaged (every slice through all its steps
// before the next) the same plan leaves the link idle meanwhile.
TEST(Sim, TheSiteGroupedAllReduceOverlapsWorkInsideTheSiteWithTheSiteLink) {
  const size_t slot = 4 << 20, count = 16 << 20;  // 64 MiB of floats in 4 slices a channel
  MachineModel m = nodesOf(4, 1, 30.0, 1.0, slot);
  m.siteOfNode = {0, 0, 1, 1};
  m.wan = {5000.0, 0.125};
  m.wanPerNode = true;
  PlanRequest request;
  request.collective = Collective::AllReduce;
  request.nranks = 4;
  request.nodeOfRank = m.nodeOfRank;
  request.siteOfRank = {0, 0, 1, 1};
  PlanSet staged = buildPlanSet(algorithmEntry(Algorithm::Hierarchical), request);
  PlanSet unstaged = staged;
  for (Plan& plan : unstaged)
    for (Step& step : plan.steps) step.flags &= static_cast<uint8_t>(~kStartsStage);
  ReplayResult overlapped, serial;
  ASSERT_TRUE(replay(staged, count, weftFloat32, m, &overlapped).isOk());
  ASSERT_TRUE(replay(unstaged, count, weftFloat32, m, &serial).isOk());
  // Each node sends S/2 over its site link; a slice's reduce-scatter (or
  // all-gather) inside the site is two 4 MiB steps over the 1 GB/s network;
  // every slice waits out the site link's latency twice.
  const double link = count * 4.0 / 2 / 0.125e3, local = 2 * slot / 1e3, slices = 4, latency = 2 * 5000.0;
  // Staged: the link's time, plus the first slice's reduce-scatter and the
  // last one's all-gather, plus the latencies.
  EXPECT_LT(overlapped.micros, link + 2 * local + slices * latency) << overlapped.micros;
  // Unstaged: every slice's work inside the site adds to the link's time.
  EXPECT_GT(serial.micros, link + slices * 2 * local) << serial.micros;
}

// Replaying one group of ranks and delivering its messages to the group's
// own ranks gives the very times of replaying them all, when the plans
// repeat from group to group (ring, hierarchical) and the machine does.
TEST(Sim, AggregatingOverGroupsGivesTheFullReplaysTimes) {
  MachineModel m = nodesOf(8, 4, 5.0, 2.0, 64 * 1024);
  m.intraNode = {0.5, 20.0};
  m.nicsPerNode = 2;
  m.nodesPerLeaf = 2;
  m.oversubscription = 2;
  m.copyGBps = 30;
  m.reduceGBps = 15;
  m.stepMicros = 0.2;
  m.enginePerChannel = true;  // channels side by side, so that folding them is exact too
  for (Algorithm algorithm : {Algorithm::Ring, Algorithm::Hierarchical})
    for (size_t count : {size_t{1024}, size_t{1024 * 100}, size_t{1024 * 10000}}) {  // equal 64-byte shares
      PlanRequest request;
      request.collective = Collective::AllReduce;
      request.nranks = 32;
      request.nChannels = 2;
      request.rings = {identityRing(32)};  // one ring on both channels, so that they fold
      ReplayResult full, grouped;
      ASSERT_TRUE(
          simulate(algorithmEntry(algorithm), request, count, weftFloat32, m, &full, Aggregation::Never).isOk());
      Status s = simulate(algorithmEntry(algorithm), request, count, weftFloat32, m, &grouped, Aggregation::Always);
      ASSERT_TRUE(s.isOk()) << s.message();
      EXPECT_EQ(full.replayedRanks, 32);
      EXPECT_EQ(grouped.replayedRanks, 8);     // a leaf: 2 nodes of 4
      EXPECT_EQ(grouped.replayedChannels, 1);  // the two run the same steps
      EXPECT_TRUE(grouped.foldedChannels);
      EXPECT_NEAR(grouped.micros, full.micros, full.micros * 1e-9) << algorithmName(algorithm) << " " << count;
      EXPECT_NEAR(grouped.busiestLinkBytes, full.busiestLinkBytes, 1e-6) << algorithmName(algorithm) << " " << count;
      EXPECT_EQ(grouped.messages, full.messages) << algorithmName(algorithm) << " " << count;
    }
  // A rooted collective's plans differ from group to group.
  PlanRequest request;
  request.collective = Collective::Broadcast;
  request.nranks = 32;
  request.root = 0;
  ReplayResult r;
  Status s = simulate(algorithmEntry(Algorithm::Ring), request, 1024, weftFloat32, m, &r, Aggregation::Always);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("cannot be aggregated"), std::string::npos) << s.message();
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

TEST(SimCluster, ASpecOverridesThePresetItNames) {
  Result<Cluster> c = parseClusterSpec(R"({"version": 1, "preset": "dgx-h100", "nodes": 3,
      "network": {"gbps": 50}, "rank": {"stepUs": 0.25}, "fifo": {"slots": 4}})");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  EXPECT_EQ(c.value().nodes, 3);
  EXPECT_EQ(c.value().ranksPerNode, 8);
  EXPECT_EQ(c.value().machine.nranks, 24);
  EXPECT_EQ(c.value().machine.nodeOfRank[23], 2);
  EXPECT_EQ(c.value().machine.network.gbps, 50);
  EXPECT_EQ(c.value().machine.network.latencyMicros, 5.0);  // the preset's
  EXPECT_EQ(c.value().machine.intraNode.gbps, 390);
  EXPECT_TRUE(c.value().machine.intraSwitched);
  EXPECT_EQ(c.value().machine.nicsPerNode, 8);
  EXPECT_EQ(c.value().machine.stepMicros, 0.25);
  EXPECT_EQ(c.value().machine.nSlots, 4);
  EXPECT_TRUE(c.value().machine.enginePerChannel);
}

TEST(SimCluster, FabricSitesAndTheNodeAreRead) {
  Result<Cluster> c = parseClusterSpec(R"({"version": 1, "nodes": 4, "ranksPerNode": 2, "nicsPerNode": 2,
      "intraNode": {"switched": true}, "fabric": {"nodesPerLeaf": 2, "oversubscription": 3},
      "sites": {"count": 2, "wan": {"latencyUs": 4000, "gbps": 0.5, "perNode": true}}, "node": {"memoryGBps": 40, "cores": 4},
      "rank": {"switchUs": 2}, "channels": 4})");
  ASSERT_TRUE(c.isOk()) << c.status().message();
  const MachineModel& m = c.value().machine;
  EXPECT_TRUE(m.intraSwitched);
  EXPECT_EQ(m.nicsPerNode, 2);
  EXPECT_EQ(m.nodesPerLeaf, 2);
  EXPECT_EQ(m.oversubscription, 3);
  EXPECT_EQ(m.siteOfNode, (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(m.wan.latencyMicros, 4000);
  EXPECT_EQ(m.wan.gbps, 0.5);
  EXPECT_TRUE(m.wanPerNode);
  EXPECT_EQ(m.nodeMemoryGBps, 40);
  EXPECT_EQ(m.coresPerNode, 4);
  EXPECT_EQ(m.switchMicros, 2);
  EXPECT_EQ(c.value().channels, 4);
  EXPECT_EQ(presetCluster("sites").value().machine.siteOfNode, (std::vector<int>{0, 0, 1, 1}));
  EXPECT_TRUE(presetCluster("sites").value().machine.wanPerNode);
}

// A node from a topology file: the DGX-2's 16 GPUs all through NVSwitches
// (a port each at 150 GB/s); the POWER8 machine's 4 GPUs in NVLink pairs
// (40 GB/s) joined across the sockets (7.9 GB/s), which the ring then
// crosses as its busiest link.
TEST(SimCluster, ANodeComesFromATopologyFile) {
  std::string dir = WEFT_TOPOLOGY_DATA_DIR;
  Result<Cluster> dgx2 = parseClusterSpec(R"({"version": 1, "nodeTopology": "nvidiaDGX2.xml"})", dir);
  ASSERT_TRUE(dgx2.isOk()) << dgx2.status().message();
  EXPECT_EQ(dgx2.value().ranksPerNode, 16);
  EXPECT_EQ(dgx2.value().machine.nranks, 16);
  EXPECT_TRUE(dgx2.value().machine.intraSwitched);
  EXPECT_NEAR(dgx2.value().machine.intraNode.gbps, 150, 1);
  EXPECT_TRUE(dgx2.value().machine.enginePerChannel);
  Result<Cluster> p8 =
      parseClusterSpec(R"({"version": 1, "nodeTopology": "power8gpudistances.xml", "rank": {"copyGBps": 1000,
          "reduceGBps": 1000}})",
                       dir);
  ASSERT_TRUE(p8.isOk()) << p8.status().message();
  const MachineModel& m = p8.value().machine;
  EXPECT_EQ(m.nranks, 4);
  EXPECT_FALSE(m.intraSwitched);
  ASSERT_EQ(m.pairGBps.size(), 16u);
  EXPECT_NEAR(m.pairGBps[0 * 4 + 1], 40, 0.5);
  EXPECT_NEAR(m.pairGBps[0 * 4 + 2], 7.9, 0.1);
  PlanRequest request;
  request.collective = Collective::AllReduce;
  request.nranks = 4;
  ReplayResult r;
  ASSERT_TRUE(simulate(algorithmEntry(Algorithm::Ring), request, 1 << 24, weftFloat32, m, &r).isOk());
  EXPECT_EQ(r.busiestLink, "rank 1 -> rank 2");
  EXPECT_FALSE(parseClusterSpec(R"({"version": 1, "nodeTopology": "missing.xml"})", dir).isOk());
}

TEST(SimCluster, BadSpecsNameWhatIsWrong) {
  auto message = [](const char* text) {
    Result<Cluster> c = parseClusterSpec(text);
    return c.isOk() ? std::string("accepted") : c.status().message();
  };
  EXPECT_NE(message(R"({"nodes": 2})").find("\"version\": 1 is required"), std::string::npos);
  EXPECT_NE(message(R"({"version": 1, "gpus": 8})").find("unknown field \"gpus\""), std::string::npos);
  EXPECT_NE(message(R"({"version": 1, "network": {"gbps": 0}})").find("network needs"), std::string::npos);
  EXPECT_NE(message(R"({"version": 1, "preset": "dgx-a100"})").find("no cluster preset dgx-a100"), std::string::npos);
  EXPECT_NE(message(R"({"version": 1, "nodes": "two"})").find("cluster spec:"), std::string::npos);
  EXPECT_NE(message("[1, 2").find("not a JSON object"), std::string::npos);
  EXPECT_NE(message(R"({"version": 1, "nodes": 3, "sites": {"count": 2}})").find("do not split into 2 equal sites"),
            std::string::npos);
  EXPECT_NE(message(R"({"version": 1, "fabric": {"oversubscription": 0.5}})").find("oversubscription at least 1"),
            std::string::npos);
  for (const std::string& preset : clusterPresets()) EXPECT_TRUE(loadCluster(preset).isOk()) << preset;
  EXPECT_FALSE(loadCluster("/nonexistent/spec.json").isOk());
}

// A GPU runs a block per channel: channels then do not queue for one engine.
TEST(SimCluster, EnginesPerChannelRunChannelsSideBySide) {
  MachineModel shared = linksOnly(2, 1.0, 1000.0, 64 * 1024);
  shared.copyGBps = shared.reduceGBps = 10;
  MachineModel perChannel = shared;
  perChannel.enginePerChannel = true;
  PlanRequest request;
  request.collective = Collective::AllReduce;
  request.nranks = 2;
  request.nChannels = 4;
  PlanSet plans = buildPlanSet(algorithmEntry(Algorithm::Ring), request);
  ReplayResult a, b;
  ASSERT_TRUE(replay(plans, 1 << 22, weftFloat32, shared, &a).isOk());
  ASSERT_TRUE(replay(plans, 1 << 22, weftFloat32, perChannel, &b).isOk());
  EXPECT_LT(b.micros, a.micros / 2);
}

double busbwOf(const Cluster& c, Algorithm algorithm, size_t bytes, int channels, double* micros = nullptr,
               std::vector<RingOrder> rings = {}) {
  PlanRequest request;
  request.collective = Collective::AllReduce;
  request.nranks = c.machine.nranks;
  request.nChannels = channels;
  request.rings = std::move(rings);
  ReplayResult r;
  Status s = simulate(algorithmEntry(algorithm), request, bytes / 4, weftFloat32, c.machine, &r);
  EXPECT_TRUE(s.isOk()) << s.message();
  if (micros != nullptr) *micros = r.micros;
  int n = c.machine.nranks;
  return static_cast<double>(bytes) / (r.micros * 1e3) * 2.0 * (n - 1) / n;
}

Cluster pod(int nodes, int ranksPerNode) {
  Cluster c = presetCluster("dgx-h100-pod").value();
  c.nodes = nodes;
  c.ranksPerNode = ranksPerNode;
  layOut(&c);
  return c;
}

// Published figures the presets reproduce (docs/performance.md names the
// sources): NCCL's ring all-reduce on 8 H100 SXM reaches 360-370 GB/s
// busbw at large sizes; between two nodes a 400 Gbit/s InfiniBand NIC
// gives about 48 GB/s busbw; within 10% each.
TEST(SimPresets, PublishedBandwidthsAreReproducedWithinTenPercent) {
  Cluster node = presetCluster("dgx-h100").value();
  double nvlink = busbwOf(node, Algorithm::Ring, size_t{1} << 30, node.channels);
  EXPECT_NEAR(nvlink, 365, 36.5);
  Cluster twoNodes = pod(2, 1);  // a GPU and its NIC on each of two nodes
  double nic = busbwOf(twoNodes, Algorithm::Ring, size_t{1} << 30, twoNodes.channels);
  EXPECT_NEAR(nic, 48, 4.8);
}

// Two DGX H100 nodes, 16 GPUs, a 400G NIC per GPU: the channels' rings
// enter and leave each node at a different GPU (channelRings), so the ring
// uses all 8 NICs of a node, about 8 x 48 GB/s; one ring and its reverse
// on every channel leave each node on two NICs only (the last rank's for
// the ring, the first's for the reverse): a quarter of that.
TEST(SimPresets, RotatedRingsCrossBetweenTwoNodesOnEveryNic) {
  Cluster twoNodes = pod(2, 8);
  double rotated = busbwOf(twoNodes, Algorithm::Ring, size_t{1} << 29, twoNodes.channels);
  EXPECT_NEAR(rotated, 8 * 48, 8 * 4.8);
  RingOrder ring = identityRing(16);
  double plain = busbwOf(twoNodes, Algorithm::Ring, size_t{1} << 29, twoNodes.channels, nullptr,
                         {ring, RingOrder(ring.rbegin(), ring.rend())});
  EXPECT_NEAR(plain, rotated / 4, rotated / 40);
}

// NCCL 2.4's double binary trees: an 8-byte all-reduce's time grows with
// log n on a tree and linearly on a ring. From 1024 GPUs to 16384 the
// ring takes 16 times as long, the tree less than twice.
TEST(SimPresets, TreeLatencyGrowsWithLogNAndRingsLinearly) {
  double ring1k = 0, ring16k = 0, tree1k = 0, tree16k = 0;
  busbwOf(pod(128, 8), Algorithm::Ring, 8, 16, &ring1k);
  busbwOf(pod(2048, 8), Algorithm::Ring, 8, 16, &ring16k);
  busbwOf(pod(128, 8), Algorithm::Tree, 8, 16, &tree1k);
  busbwOf(pod(2048, 8), Algorithm::Tree, 8, 16, &tree16k);
  EXPECT_NEAR(ring16k / ring1k, 16.0, 1.6);
  EXPECT_LT(tree16k / tree1k, 2.0);
  EXPECT_GT(ring16k / tree16k, 100.0);
  EXPECT_GT(ring1k / tree1k, 10.0);
}

// The prefill/decode table: Llama 3 8B and 405B, FP16, 1K and 8K tokens,
// 100 concurrent requests. The table rounds (bytes to one significant
// figure, two for 0.13 GB; times from the rounded bytes); the exact figures
// are within 8% of it.
TEST(SimKv, TheLlamaTableIsReproduced) {
  KvModel small = *findKvModel("llama3-8b"), large = *findKvModel("LLAMA3-405B");
  EXPECT_EQ(kvBytesPerTokenLayer(small), 4096);  // 2 x 8 KV heads x 128 x 2 bytes
  EXPECT_EQ(kvBytesPerTokenLayer(large), 4096);
  EXPECT_EQ(small.layers, 32);
  EXPECT_EQ(large.layers, 126);
  struct Row {
    const KvModel& model;
    double tokens, requests, tableGB;
  };
  for (const Row& row : {Row{small, 1024, 1, 0.13}, Row{large, 1024, 1, 0.5}, Row{small, 8192, 1, 1.0},
                         Row{large, 8192, 1, 4.0}, Row{small, 8192, 100, 100}, Row{large, 8192, 100, 400}}) {
    double gb = kvBytes(row.model, row.tokens, row.requests) / 1e9;
    EXPECT_NEAR(gb, row.tableGB, row.tableGB * 0.08) << row.model.name << " " << row.tokens << " x " << row.requests;
  }
  // The table's times, from its rounded bytes: 100 GB and 400 GB.
  EXPECT_DOUBLE_EQ(transferSeconds(100e9, 100), 8.0);
  EXPECT_DOUBLE_EQ(transferSeconds(400e9, 100), 32.0);
  EXPECT_DOUBLE_EQ(transferSeconds(100e9, 400), 2.0);
  EXPECT_DOUBLE_EQ(transferSeconds(400e9, 400), 8.0);
  EXPECT_DOUBLE_EQ(transferSeconds(100e9, 800), 1.0);
  EXPECT_DOUBLE_EQ(transferSeconds(400e9, 800), 4.0);
  EXPECT_NEAR(kvBytes(small, 8192, 100) * 8 / 100e9, 8.59, 0.01);  // the exact bytes at 100 Gbps
}

// Pipelined with the prefill a layer at a time: a link faster than the
// prefill leaves one layer's transfer exposed; a slower one, what it has
// not moved when the prefill ends.
TEST(SimKv, PipeliningWithThePrefillHidesAllButWhatTheLinkCannotKeepUpWith) {
  KvModel model = *findKvModel("llama3-70b");
  double bytes = kvBytes(model, 8192, 1);
  double total = transferSeconds(bytes, 100), perLayer = total / model.layers;
  EXPECT_NEAR(exposedSecondsPipelined(model, bytes, 100, perLayer * 2), perLayer, 1e-12);
  double slowPrefill = perLayer / 2;
  EXPECT_NEAR(exposedSecondsPipelined(model, bytes, 100, slowPrefill), total - (model.layers - 1) * slowPrefill, 1e-12);
  EXPECT_NEAR(exposedSecondsPipelined(model, bytes, 100, perLayer * 2, 0.005), perLayer + 0.005, 1e-12);
}

TEST(SimKv, LinkRatesAndModelNamesAreParsed) {
  EXPECT_EQ(parseLinkGbps("100Gbps"), 100);
  EXPECT_EQ(parseLinkGbps("400G"), 400);
  EXPECT_EQ(parseLinkGbps("1.6Tbps"), 1600);
  EXPECT_EQ(parseLinkGbps("800"), 800);
  EXPECT_FALSE(parseLinkGbps("fast").has_value());
  EXPECT_FALSE(parseLinkGbps("100 furlongs").has_value());
  EXPECT_FALSE(findKvModel("llama2-7b").has_value());
}

}  // namespace
}  // namespace weft::sim
