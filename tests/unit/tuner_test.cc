// The cost model and the tuner: the tune file's format, each algorithm's
// cost against the others where the answer is known from the byte and hop
// counts, and decisions that every rank makes alike.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "algorithms/cost_model.h"
#include "algorithms/registry.h"
#include "algorithms/tuner.h"

namespace weft {
namespace {

TEST(CostConstants, FormatThenParseGivesTheSameValues) {
  CostConstants odd;
  odd.hopMicros = 0.25;
  odd.copyGBps = 123.5;
  odd.netGBps = 3.125;
  CostConstants back;
  ASSERT_TRUE(parseCostConstants(formatCostConstants(odd), &back).isOk());
  EXPECT_EQ(back.hopMicros, 0.25);
  EXPECT_EQ(back.copyGBps, 123.5);
  EXPECT_EQ(back.netGBps, 3.125);
  EXPECT_EQ(back.switchMicros, odd.switchMicros);
}

TEST(CostConstants, CommentsAndBlankLinesAreSkippedAndUnsetNamesKeepTheirDefaults) {
  CostConstants constants;
  ASSERT_TRUE(parseCostConstants("# measured\n\n  hop_us = 4   # spinning\r\n", &constants).isOk());
  EXPECT_EQ(constants.hopMicros, 4.0);
  EXPECT_EQ(constants.copyGBps, CostConstants().copyGBps);
}

TEST(CostConstants, BadLinesAreNamed) {
  CostConstants constants;
  Status unknown = parseCostConstants("hop_us = 1\nhops = 2\n", &constants);
  ASSERT_FALSE(unknown.isOk());
  EXPECT_NE(unknown.message().find("line 2: unknown constant 'hops'"), std::string::npos) << unknown.message();
  EXPECT_NE(unknown.message().find("hop_us"), std::string::npos) << unknown.message();
  for (const char* bad : {"copy_gbps = -1", "copy_gbps = 0", "copy_gbps = fast", "copy_gbps = 3 GB/s", "copy_gbps"}) {
    Status status = parseCostConstants(bad, &constants);
    EXPECT_FALSE(status.isOk()) << bad;
    EXPECT_NE(status.message().find("line 1"), std::string::npos) << status.message();
  }
}

TEST(CostConstants, AnUnreadableTuneFileIsAnError) {
  setenv("WEFT_TUNE_FILE", "/nonexistent/weft.tune", 1);
  Result<CostConstants> loaded = loadCostConstants();
  unsetenv("WEFT_TUNE_FILE");
  ASSERT_FALSE(loaded.isOk());
  EXPECT_NE(loaded.status().message().find("WEFT_TUNE_FILE=/nonexistent/weft.tune"), std::string::npos);
  ASSERT_TRUE(loadCostConstants().isOk());  // unset: the defaults
}

// A temporary tune file holding `text`; removed with the object.
class TuneFile {
 public:
  explicit TuneFile(const char* text) {
    int fd = mkstemp(path_);
    if (fd < 0) return;
    FILE* file = fdopen(fd, "w");
    fputs(text, file);
    fclose(file);
  }
  ~TuneFile() { remove(path_); }
  const char* path() const { return path_; }

 private:
  char path_[32] = "/tmp/weft_tune_XXXXXX";
};

TEST(CostConstants, TheTuneFileIsRead) {
  TuneFile tune("net_gbps = 25\n");
  setenv("WEFT_TUNE_FILE", tune.path(), 1);
  Result<CostConstants> loaded = loadCostConstants();
  unsetenv("WEFT_TUNE_FILE");
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_EQ(loaded.value().netGBps, 25.0);
}

CostQuery query(Collective collective, size_t bytes, int nranks, int nodes, int cores) {
  CostQuery q;
  q.collective = collective;
  q.bytes = bytes;
  std::vector<int> nodeOfRank;
  for (int r = 0; r < nranks; ++r) nodeOfRank.push_back(r * nodes / nranks);
  q.shape = costShape(nranks, nodeOfRank, cores, 131072);
  return q;
}

double micros(Algorithm algorithm, const CostQuery& q) {
  CostTerms terms;
  if (!algorithmEntry(algorithm).cost(q, &terms)) return INFINITY;
  return costMicros(q, terms);
}

TEST(CostModel, EveryEntryPricesEveryCollectiveItBuilds) {
  for (const AlgorithmEntry& entry : algorithmRegistry())
    for (int c = 0; c <= static_cast<int>(Collective::Scatter); ++c) {
      Collective collective = static_cast<Collective>(c);
      if (!entry.supports(collective)) continue;
      for (int n : {1, 2, 3, 7, 64, 1024})
        for (int nodes : {1, 2, n}) {
          if (nodes > n) continue;
          double last = 0;
          for (int sites : {1, 2}) {
            if (sites > 1 && nodes % sites != 0) continue;
            last = 0;
            for (size_t bytes = 0; bytes <= (size_t{1} << 30); bytes = bytes == 0 ? 1 : bytes * 4) {
              CostQuery q = query(collective, bytes, n, nodes, 8);
              q.shape.nSites = sites;
              CostTerms terms;
              if (!entry.cost(q, &terms)) continue;
              double t = costMicros(q, terms);
              EXPECT_TRUE(std::isfinite(t) && t > 0) << entry.name << " " << collectiveName(collective) << " " << n;
              EXPECT_GE(t, last) << entry.name << " " << collectiveName(collective) << " n=" << n << " bytes=" << bytes
                                 << " sites=" << sites;
              EXPECT_TRUE(terms.hops >= 0 && terms.netHops >= 0 && terms.wanHops >= 0) << entry.name;
              if (sites == 1) EXPECT_EQ(terms.wanHops + terms.wanBytes, 0) << entry.name;
              last = t;
            }
          }
        }
    }
}

TEST(CostModel, HierarchicalSendsTwoThirdsOfTheRingsBytesOverTheNetworkOnTwoNodesOfTwo) {
  CostQuery q = query(Collective::AllReduce, 64u << 20, 4, 2, 8);
  CostTerms ring, hier;
  ASSERT_TRUE(ringCost(q, &ring));
  ASSERT_TRUE(hierarchicalCost(q, &hier));
  EXPECT_DOUBLE_EQ(ring.netBytes, 1.5 * (64u << 20));
  EXPECT_DOUBLE_EQ(hier.netBytes, 1.0 * (64u << 20));
  EXPECT_LT(costMicros(q, hier), costMicros(q, ring));
  // One node, one rank per node, or uneven nodes: the flat ring's plan.
  EXPECT_FALSE(hierarchicalCost(query(Collective::AllReduce, 1024, 4, 1, 8), &hier));
  EXPECT_FALSE(hierarchicalCost(query(Collective::AllReduce, 1024, 4, 4, 8), &hier));
  EXPECT_FALSE(hierarchicalCost(query(Collective::AllReduce, 1024, 5, 2, 8), &hier));
}

// Two sites of two one-rank nodes: the flat ring crosses the site link with
// 1.5 S from one node and pays it on 3 of its 6 hops; the plan grouped by
// site sends S/2 from each node over its own share and crosses twice.
TEST(CostModel, AcrossSitesTheSiteGroupedPlanCrossesTheSiteLinkTheLeast) {
  const double S = 64u << 20;
  CostQuery q = query(Collective::AllReduce, 64u << 20, 4, 4, 8);
  CostTerms ring, hier, two;
  EXPECT_FALSE(hierarchicalCost(q, &hier));  // one rank per node, one site: the flat ring's plan
  q.shape.nSites = 2;
  ASSERT_TRUE(ringCost(q, &ring));
  ASSERT_TRUE(hierarchicalCost(q, &hier));
  EXPECT_DOUBLE_EQ(ring.wanHops, 3);
  EXPECT_DOUBLE_EQ(ring.wanBytes, 1.5 * S);
  EXPECT_DOUBLE_EQ(hier.wanHops, 2);
  EXPECT_DOUBLE_EQ(hier.wanBytes, 0.5 * S);
  EXPECT_DOUBLE_EQ(hier.netHops, 2);  // inside a site, over its two nodes' network
  EXPECT_LT(costMicros(q, hier), costMicros(q, ring));
  // Two channels run the ring both ways, out of two nodes of each site.
  q.channels = 2;
  ASSERT_TRUE(ringCost(q, &two));
  EXPECT_DOUBLE_EQ(two.wanBytes, 0.75 * S);
  // The site link's constants price it: a tenth of the latency, a tenth of the time per hop.
  CostQuery tiny = query(Collective::AllReduce, 8, 4, 4, 8);
  tiny.shape.nSites = 2;
  CostTerms t;
  ASSERT_TRUE(algorithmEntry(Algorithm::OneShot).cost(tiny, &t));
  EXPECT_DOUBLE_EQ(t.wanHops, 1);
  double slow = costMicros(tiny, t);
  tiny.constants.wanMicros /= 10;
  EXPECT_NEAR(slow - costMicros(tiny, t), 0.9 * CostConstants{}.wanMicros, 1e-6);
  // Sites that do not split the ranks evenly, or one rank a site: no
  // site-grouped plan (the flat ring's).
  CostQuery odd = query(Collective::AllReduce, 1024, 5, 5, 8);
  odd.shape.nSites = 2;
  EXPECT_FALSE(hierarchicalCost(odd, &hier));
  CostQuery single = query(Collective::AllReduce, 1024, 2, 2, 8);
  single.shape.nSites = 2;
  EXPECT_FALSE(hierarchicalCost(single, &hier));
}

// Across two sites of two nodes the tuner takes one hop for small messages
// and the site-grouped plan for large ones, where without sites it had no
// such plan (one rank per node).
TEST(Tuner, AcrossSitesTheTunerWeighsTheSiteLink) {
  TunerConfig c;
  c.nranks = 4;
  c.nodeOfRank = {0, 1, 2, 3};
  c.shape = costShape(4, c.nodeOfRank, 2, 4u << 20);
  Tuner flat(c);
  c.siteOfRank = {0, 0, 1, 1};
  Tuner sites(c);
  EXPECT_EQ(sites.decide(Collective::AllReduce, 8).entry->id, Algorithm::OneShot);
  EXPECT_EQ(sites.decide(Collective::AllReduce, 16u << 20).entry->id, Algorithm::Hierarchical);
  EXPECT_NE(flat.decide(Collective::AllReduce, 16u << 20).entry->id, Algorithm::Hierarchical);
}

TEST(CostModel, TheTreeHasLogarithmicHopsAndWinsSmallMessagesOnManyNodes) {
  CostQuery q = query(Collective::AllReduce, 8, 8, 8, 8);
  CostTerms tree, ring;
  ASSERT_TRUE(treeCost(q, &tree));
  ASSERT_TRUE(ringCost(q, &ring));
  EXPECT_EQ(tree.netHops, 2 * 3);  // one tree carries 8 bytes: up and down 3 levels
  EXPECT_EQ(ring.netHops, 2 * 7);
  EXPECT_LT(micros(Algorithm::Tree, q), micros(Algorithm::Ring, q));
  EXPECT_GT(micros(Algorithm::Tree, query(Collective::AllReduce, 1u << 30, 8, 8, 8)),
            micros(Algorithm::Ring, query(Collective::AllReduce, 1u << 30, 8, 8, 8)));
  EXPECT_EQ(cost::treeDepth(1), 0);
  EXPECT_EQ(cost::treeDepth(2), 1);
  EXPECT_EQ(cost::treeDepth(7), 2);
  EXPECT_EQ(cost::treeDepth(1024), 10);
}

TEST(CostModel, OneShotWinsTinyMessagesAndLosesLargeOnes) {
  EXPECT_LT(micros(Algorithm::OneShot, query(Collective::AllReduce, 8, 4, 1, 8)),
            micros(Algorithm::Ring, query(Collective::AllReduce, 8, 4, 1, 8)));
  EXPECT_GT(micros(Algorithm::OneShot, query(Collective::AllReduce, 64u << 20, 4, 1, 8)),
            micros(Algorithm::Ring, query(Collective::AllReduce, 64u << 20, 4, 1, 8)));
}

TEST(CostModel, CrowdedCoresCostMore) {
  EXPECT_GT(micros(Algorithm::Ring, query(Collective::AllReduce, 1u << 20, 4, 1, 2)),
            micros(Algorithm::Ring, query(Collective::AllReduce, 1u << 20, 4, 1, 4)));
}

TEST(Tuner, SizeClassesArePowersOfTwo) {
  EXPECT_EQ(Tuner::sizeClass(0), 0);
  EXPECT_EQ(Tuner::sizeClass(1), 1);
  EXPECT_EQ(Tuner::sizeClass(4095), 12);
  EXPECT_EQ(Tuner::sizeClass(4096), 13);
  EXPECT_EQ(Tuner::classBytes(13), 4096u);
  EXPECT_EQ(Tuner::sizeClass(SIZE_MAX), 64);
  for (int c = 0; c < Tuner::kSizeClasses; ++c) EXPECT_EQ(Tuner::sizeClass(Tuner::classBytes(c)), c);
}

TunerConfig config(int nranks, int nodes, int cores) {
  TunerConfig c;
  c.nranks = nranks;
  for (int r = 0; r < nranks; ++r) c.nodeOfRank.push_back(r * nodes / nranks);
  c.shape = costShape(nranks, c.nodeOfRank, cores, 131072);
  return c;
}

TEST(Tuner, TheDecisionIsTheCheapestCandidateAndHoldsForItsClass) {
  Tuner tuner(config(16, 4, 8));
  for (Collective collective :
       {Collective::AllReduce, Collective::AllGather, Collective::Broadcast, Collective::AllToAll, Collective::Scatter})
    for (size_t bytes = 8; bytes <= (size_t{1} << 30); bytes *= 2) {
      std::vector<TuneCandidate> all = tuner.candidates(collective, bytes);
      ASSERT_FALSE(all.empty());
      for (size_t i = 1; i < all.size(); ++i) EXPECT_LE(all[i - 1].micros, all[i].micros);
      TuneCandidate chosen = tuner.decide(collective, bytes);
      EXPECT_EQ(chosen.entry, all.front().entry) << collectiveName(collective) << " " << bytes;
      EXPECT_EQ(chosen.channels, all.front().channels);
      TuneCandidate within = tuner.decide(collective, bytes * 2 - 1);
      EXPECT_EQ(within.entry, chosen.entry);
      EXPECT_TRUE(chosen.entry->supports(collective));
    }
  // Large all-reduces over 4 nodes of 4 cross the network the fewest times.
  EXPECT_EQ(tuner.decide(Collective::AllReduce, size_t{1} << 30).entry->id, Algorithm::Hierarchical);
}

// A broadcast whose peers read the root's buffer by address (processes of
// one node with cross-memory attach) costs the root no copy: every peer
// reads it at once, one hop, where through slots the root copies it n-1
// times. The star wins from the threshold up there, and is not taken for
// large messages through slots; its root's sends are counted one by one, so
// many ranks do not take it for small messages either.
TEST(Tuner, ABroadcastReadByAddressGoesStraightFromTheRoot) {
  TunerConfig slots = config(4, 1, 2);
  TunerConfig byAddress = slots;
  byAddress.shape.byAddressMinBytes = 256u << 10;
  byAddress.shape.byAddressMaxBytes = SIZE_MAX;
  Tuner viaSlots(slots), read(byAddress);
  for (size_t bytes : {size_t{256} << 10, size_t{2} << 20, size_t{256} << 20}) {
    EXPECT_EQ(read.decide(Collective::Broadcast, bytes).entry->id, Algorithm::Direct) << bytes;
    EXPECT_NE(viaSlots.decide(Collective::Broadcast, bytes).entry->id, Algorithm::Direct) << bytes;
  }
  // Below the threshold both weigh the slots alike.
  for (size_t bytes = 8; bytes < (256u << 10); bytes *= 2)
    EXPECT_EQ(read.decide(Collective::Broadcast, bytes).entry, viaSlots.decide(Collective::Broadcast, bytes).entry)
        << bytes;
  CostQuery q;
  q.collective = Collective::Broadcast;
  q.bytes = 1u << 20;
  q.shape = byAddress.shape;
  CostTerms terms;
  ASSERT_TRUE(directCost(q, &terms));
  EXPECT_EQ(terms.copyBytes, 1u << 20);  // a peer's read; the root copies nothing into slots
  q.shape = slots.shape;
  ASSERT_TRUE(directCost(q, &terms));
  EXPECT_EQ(terms.copyBytes, 4u << 20);  // n-1 slots' worth and the root's own copy
  EXPECT_EQ(terms.steps, 2);
  // 64 ranks on one node: one hop, but 63 sends in a row from the root.
  Tuner many(config(64, 1, 64));
  EXPECT_NE(many.decide(Collective::Broadcast, 8).entry->id, Algorithm::Direct);
}

TEST(Tuner, TunersWithOneConfigDecideAlike) {
  Tuner a(config(6, 2, 2)), b(config(6, 2, 2));
  // b sees the sizes in the opposite order: decisions do not depend on history.
  for (size_t bytes = size_t{1} << 30; bytes >= 1; bytes /= 2) b.decide(Collective::AllReduce, bytes + bytes / 3);
  for (size_t bytes = 1; bytes <= (size_t{1} << 30); bytes *= 2) {
    EXPECT_EQ(a.decide(Collective::AllReduce, bytes).entry, b.decide(Collective::AllReduce, bytes).entry) << bytes;
    EXPECT_EQ(a.decide(Collective::AllReduce, bytes).channels, b.decide(Collective::AllReduce, bytes).channels);
  }
}

TEST(Tuner, WeftAlgoAndChannelsNarrowTheCandidates) {
  TunerConfig forced = config(4, 1, 8);
  forced.forcedAlgo = "TREE";
  forced.maxChannels = 4;
  forced.forcedChannels = 3;
  Tuner tuner(forced);
  for (size_t bytes : {size_t{8}, size_t{1} << 26}) {
    TuneCandidate chosen = tuner.decide(Collective::AllReduce, bytes);
    EXPECT_EQ(chosen.entry->id, Algorithm::Tree);
    EXPECT_EQ(chosen.channels, 3);
  }
  // A collective the forced algorithm does not build: the tuner's own choice.
  EXPECT_EQ(tuner.decide(Collective::AllToAll, 4096).entry->id, Algorithm::Direct);
  EXPECT_TRUE(tuner.decide(Collective::Broadcast, 4096).entry->supports(Collective::Broadcast));
  // The forced hierarchical algorithm on one node is still a candidate (the flat ring's plan).
  TunerConfig hier = config(4, 1, 8);
  hier.forcedAlgo = "hierarchical";
  EXPECT_EQ(Tuner(hier).decide(Collective::AllReduce, 1 << 20).entry->id, Algorithm::Hierarchical);
}

TEST(Tuner, ChannelsAreChosenFromWhatTheTransportHas) {
  TunerConfig c = config(8, 1, 8);
  c.maxChannels = 4;
  Tuner tuner(c);
  std::vector<TuneCandidate> all = tuner.candidates(Collective::AllReduce, 1 << 20);
  int most = 0;
  for (const TuneCandidate& candidate : all) most = std::max(most, candidate.channels);
  EXPECT_EQ(most, 4);
  // On host memory one thread drives every channel: more channels only add steps.
  EXPECT_EQ(tuner.decide(Collective::AllReduce, 1 << 20).channels, 1);
}

TEST(CostConstants, DevicesReadTheirOwnTuneFileOverTheirOwnDefaults) {
  CostConstants cuda = defaultCostConstants(CostTarget::CudaDevice);
  EXPECT_LT(cuda.llHopMicros, cuda.hopMicros);  // the point of LL
  EXPECT_LT(cuda.llCopyGBps, cuda.copyGBps);    // and its price
  TuneFile tune("ll_hop_us = 0.25\nll_copy_gbps = 7.5\n");
  setenv("WEFT_DEVICE_TUNE_FILE", tune.path(), 1);
  Result<CostConstants> device = loadCostConstants(CostTarget::CudaDevice);
  Result<CostConstants> host = loadCostConstants(CostTarget::Host);
  unsetenv("WEFT_DEVICE_TUNE_FILE");
  ASSERT_TRUE(device.isOk()) << device.status().message();
  EXPECT_EQ(device.value().llHopMicros, 0.25);
  EXPECT_EQ(device.value().llCopyGBps, 7.5);
  EXPECT_EQ(device.value().callMicros, cuda.callMicros);  // the rest: the device's defaults
  ASSERT_TRUE(host.isOk());
  EXPECT_EQ(host.value().llHopMicros, CostConstants().llHopMicros);  // the host's file is another
  EXPECT_EQ(host.value().callMicros, CostConstants().callMicros);
}

// A GPU communicator's tuner as api/comm.cc sets it up.
TunerConfig deviceConfig(int nranks, int nodes) {
  TunerConfig c = config(nranks, nodes, 2);
  c.constants = defaultCostConstants(CostTarget::CudaDevice);
  c.shape.llSlotBytes = 8192;
  c.shape.coresPerNode = std::max(c.shape.coresPerNode, c.shape.ranksPerNode);
  c.lowLatency = nodes == 1;
  return c;
}

TEST(Tuner, DeviceCommunicatorsChooseTheProtocolWithTheAlgorithm) {
  for (int nranks : {2, 4, 8}) {
    Tuner tuner(deviceConfig(nranks, 1));
    bool sawLl = false, sawSimple = false;
    Protocol previous = Protocol::LowLatency;
    for (size_t bytes = 8; bytes <= (size_t{1} << 30); bytes *= 2) {
      std::vector<TuneCandidate> all = tuner.candidates(Collective::AllReduce, bytes);
      // Every algorithm and channel count comes in both protocols.
      size_t ll = static_cast<size_t>(std::count_if(
          all.begin(), all.end(), [](const TuneCandidate& c) { return c.protocol == Protocol::LowLatency; }));
      EXPECT_EQ(2 * ll, all.size()) << bytes;
      TuneCandidate chosen = tuner.decide(Collective::AllReduce, bytes);
      EXPECT_EQ(chosen.protocol, all.front().protocol) << bytes;
      EXPECT_EQ(chosen.entry, all.front().entry) << bytes;
      Protocol fromPlan = Protocol::Simple;
      ASSERT_TRUE(tuner.plan(Collective::AllReduce, bytes, -1, &fromPlan).isOk());
      EXPECT_EQ(fromPlan, chosen.protocol) << bytes;
      (chosen.protocol == Protocol::LowLatency ? sawLl : sawSimple) = true;
      // LL below a size, simple above it: one switch, never back.
      if (previous == Protocol::Simple) EXPECT_EQ(chosen.protocol, Protocol::Simple) << nranks << " ranks, " << bytes;
      previous = chosen.protocol;
    }
    EXPECT_TRUE(sawLl) << nranks;
    EXPECT_TRUE(sawSimple) << nranks;
    EXPECT_EQ(tuner.decide(Collective::AllReduce, 8).protocol, Protocol::LowLatency);
    EXPECT_EQ(tuner.decide(Collective::AllReduce, size_t{1} << 30).protocol, Protocol::Simple);
  }
  // The device's LL hand-off priced like the simple one: LL only costs.
  TunerConfig even = deviceConfig(4, 1);
  even.constants.llHopMicros = even.constants.hopMicros;
  Tuner evenTuner(even);
  for (size_t bytes = 8; bytes <= (size_t{1} << 30); bytes *= 4)
    EXPECT_EQ(evenTuner.decide(Collective::AllReduce, bytes).protocol, Protocol::Simple) << bytes;
}

TEST(Tuner, HostAndMultiNodeDeviceCommunicatorsHaveNoLl) {
  for (const TunerConfig& c : {config(4, 1, 8), deviceConfig(4, 2)}) {
    Tuner tuner(c);
    for (size_t bytes = 8; bytes <= (size_t{1} << 30); bytes *= 8)
      for (const TuneCandidate& candidate : tuner.candidates(Collective::AllReduce, bytes))
        EXPECT_EQ(candidate.protocol, Protocol::Simple) << bytes;
  }
}

TEST(Tuner, PlansFollowTheDecision) {
  Tuner tuner(config(4, 2, 8));
  for (size_t bytes : {size_t{8}, size_t{1} << 28}) {
    Result<const Plan*> plan = tuner.plan(Collective::AllReduce, bytes, -1);
    ASSERT_TRUE(plan.isOk());
    TuneCandidate chosen = tuner.decide(Collective::AllReduce, bytes);
    EXPECT_EQ(plan.value()->algorithm, chosen.entry->id);
    EXPECT_EQ(plan.value()->nChannels, chosen.channels);
  }
}

}  // namespace
}  // namespace weft
