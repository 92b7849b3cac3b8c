// Topology discovery on hwloc exports of real machines (tests/data/topologies,
// from hwloc's own test suite) and on this machine.
#include <gtest/gtest.h>

#include <cstdio>
#include <algorithm>
#include <fstream>
#include <set>

#include "device/fifo_route.h"
#include "topology/machine.h"

namespace weft {
namespace {

std::string dataFile(const char* name) { return std::string(WEFT_TOPOLOGY_DATA_DIR) + "/" + name; }

MachineTopology load(const char* name) {
  Result<MachineTopology> topo = discoverTopology(dataFile(name));
  EXPECT_TRUE(topo.isOk()) << topo.status().message();
  return topo.isOk() ? topo.take() : MachineTopology{};
}

struct Expected {
  const char* file;
  size_t packages, numaNodes, gpus, nics;
};

TEST(Topology, DeviceCountsOfEveryMachine) {
  const Expected kMachines[] = {
      {"nvidiaDGX2.xml", 2, 2, 16, 0},
      {"power8gpudistances.xml", 2, 2, 4, 0},
      // 3 Tesla M2070 (and an AMD display GPU, not counted); eth0/eth1 on one
      // dual-port card, eth2+ib0 on one ConnectX.
      {"24em64t-2n6c2t-pci.xml", 2, 2, 3, 3},
      {"32em64t-2n8c2t-pci-wholeio.xml", 2, 2, 3, 3},
      {"96em64t-4n4d3ca2co-pci.xml", 16, 4, 0, 8},
      // Written from public specifications (make_synthetic_topologies.py).
      {"dgxH100-synthetic.xml", 2, 2, 8, 8},
      {"pcie8gpu-synthetic.xml", 2, 2, 8, 1},
  };
  for (const Expected& m : kMachines) {
    MachineTopology topo = load(m.file);
    EXPECT_EQ(topo.packages.size(), m.packages) << m.file;
    EXPECT_EQ(topo.numaNodes.size(), m.numaNodes) << m.file;
    EXPECT_EQ(topo.gpus.size(), m.gpus) << m.file;
    EXPECT_EQ(topo.nics.size(), m.nics) << m.file;
  }
}

TEST(Topology, Dgx2GpusReachEachOtherThroughNvSwitchAt150GBps) {
  MachineTopology topo = load("nvidiaDGX2.xml");
  ASSERT_EQ(topo.gpus.size(), 16u);
  for (int a : topo.gpus)
    for (int b : topo.gpus) {
      Path path = topo.path(a, b);
      if (a == b) {
        EXPECT_EQ(path.cls, PathClass::Same);
        continue;
      }
      ASSERT_EQ(path.cls, PathClass::NvSwitch) << topo.nodes[a].name << " -> " << topo.nodes[b].name;
      EXPECT_DOUBLE_EQ(path.bottleneckGBps, 150.0);  // 6 links x 25 GB/s into the NVSwitches
    }
}

TEST(Topology, Power8PairsGpusByNvLinkAndCrossesSocketsOverPcie) {
  MachineTopology topo = load("power8gpudistances.xml");
  ASSERT_EQ(topo.gpus.size(), 4u);
  Path pair = topo.path(topo.gpus[0], topo.gpus[1]);
  EXPECT_EQ(pair.cls, PathClass::NvLink);
  EXPECT_DOUBLE_EQ(pair.bottleneckGBps, 40.0);
  EXPECT_EQ(topo.path(topo.gpus[2], topo.gpus[3]).cls, PathClass::NvLink);
  EXPECT_EQ(topo.path(topo.gpus[0], topo.gpus[2]).cls, PathClass::CrossSocket);
}

// Where a GPU pair's FIFOs live (device/fifo_route.h): the receiver's device
// memory over NVSwitch, NVLink or PCIe inside a socket; host memory across
// sockets, without peer access, or when WEFT_P2P_DISABLE asks; and a pair
// stages when either side says so.
TEST(FifoRoutes, FollowThePathClassBetweenTheGpus) {
  MachineTopology dgx2 = load("nvidiaDGX2.xml"), power8 = load("power8gpudistances.xml"),
                  pcie = load("24em64t-2n6c2t-pci.xml");
  auto route = [](const MachineTopology& topo, int a, int b) {
    FifoRouteQuery query;
    query.topo = &topo;
    query.busId = topo.nodes[topo.gpus[a]].busId;
    query.peerBusId = topo.nodes[topo.gpus[b]].busId;
    return chooseFifoRoute(query);
  };
  FifoRoute nvswitch = route(dgx2, 0, 15);
  EXPECT_FALSE(nvswitch.throughHost);
  EXPECT_EQ(nvswitch.why, "NVSwitch");
  EXPECT_FALSE(route(power8, 0, 1).throughHost);
  EXPECT_EQ(route(power8, 0, 1).why, "NVLink");
  FifoRoute sockets = route(power8, 0, 2);
  EXPECT_TRUE(sockets.throughHost);
  EXPECT_EQ(sockets.why, "across CPU sockets");
  EXPECT_FALSE(route(pcie, 1, 2).throughHost);
  EXPECT_EQ(route(pcie, 1, 2).why, "host bridge");
  EXPECT_TRUE(route(pcie, 0, 1).throughHost);
  EXPECT_EQ(route(pcie, 0, 0).why, "the same GPU");

  FifoRouteQuery query;
  query.topo = &dgx2;
  query.busId = dgx2.nodes[dgx2.gpus[0]].busId;
  query.peerBusId = dgx2.nodes[dgx2.gpus[1]].busId;
  query.p2pDisabled = true;
  EXPECT_EQ(chooseFifoRoute(query).why, "WEFT_P2P_DISABLE");
  query.p2pDisabled = false;
  query.reachable = false;
  EXPECT_TRUE(chooseFifoRoute(query).throughHost);
  query.emulated = true;
  EXPECT_EQ(chooseFifoRoute(query).why, "emulated device memory of another process");
  query = FifoRouteQuery{};  // no topology: peer access decides
  query.busId = "0000:01:00.0";
  query.peerBusId = "0000:02:00.0";
  EXPECT_FALSE(chooseFifoRoute(query).throughHost);

  // Rank 1 alone would stage to rank 2: both of them do, nobody else.
  std::vector<std::vector<bool>> wants = {{false, false, false}, {false, false, true}, {false, false, false}};
  std::vector<std::vector<bool>> agreed = fifoRoutesAgreed(wants);
  EXPECT_TRUE(agreed[1][2]);
  EXPECT_TRUE(agreed[2][1]);
  EXPECT_FALSE(agreed[0][1] || agreed[1][0] || agreed[0][2] || agreed[2][0]);
}

TEST(Topology, GpusAreFoundByTheBusIdCudaOrNvmlGives) {
  MachineTopology topo = load("nvidiaDGX2.xml");
  int gpu = topo.gpus[0];
  const std::string& busId = topo.nodes[gpu].busId;  // 0000:34:00.0
  EXPECT_EQ(topo.gpuByBusId(busId), gpu);
  EXPECT_EQ(topo.gpuByBusId("0000:34:00.0"), gpu);
  EXPECT_EQ(topo.gpuByBusId("00000000:34:00.0"), gpu);  // NVML
  int upper = topo.gpuByBusId("0000:E7:00.0");          // CUDA writes hex in upper case
  EXPECT_NE(upper, -1);
  EXPECT_EQ(topo.nodes[upper].busId, "0000:e7:00.0");
  EXPECT_EQ(topo.gpuByBusId("0000:99:00.0"), -1);
  EXPECT_EQ(topo.gpuByBusId("not a bus id"), -1);
}

TEST(Topology, PcieMachinePathsFollowTheTree) {
  MachineTopology topo = load("24em64t-2n6c2t-pci.xml");
  ASSERT_EQ(topo.gpus.size(), 3u);
  // GPU 0 hangs off socket 0, GPUs 1 and 2 off socket 1's host bridge; every
  // GPU link is PCIe gen2 x16-class, 4 GB/s.
  Path crossing = topo.path(topo.gpus[0], topo.gpus[1]);
  EXPECT_EQ(crossing.cls, PathClass::CrossSocket);
  EXPECT_DOUBLE_EQ(crossing.bottleneckGBps, 4.0);
  EXPECT_EQ(topo.path(topo.gpus[1], topo.gpus[2]).cls, PathClass::HostBridge);
  // The ConnectX (ib0) is on socket 0, with GPU 0.
  EXPECT_EQ(topo.path(topo.gpus[0], topo.nics[2]).cls, PathClass::HostBridge);
  EXPECT_EQ(topo.path(topo.gpus[1], topo.nics[2]).cls, PathClass::CrossSocket);
  EXPECT_NE(topo.nodes[topo.nics[2]].detail.find("ib0"), std::string::npos);
}

TEST(Topology, MalformedOrMissingFilesGiveAClearError) {
  std::string bad = ::testing::TempDir() + "/weft_bad_topology.xml";
  std::ofstream(bad) << "<?xml version=\"1.0\"?><topology><object type=\"Machine\"><broken";
  Result<MachineTopology> topo = discoverTopology(bad);
  ASSERT_FALSE(topo.isOk());
  EXPECT_NE(topo.status().message().find(bad), std::string::npos) << topo.status().message();
  Result<MachineTopology> missing = discoverTopology("/nonexistent/topology.xml");
  ASSERT_FALSE(missing.isOk());
  EXPECT_NE(missing.status().message().find("/nonexistent/topology.xml"), std::string::npos);
  std::remove(bad.c_str());
}

TEST(Topology, ThisMachineLoadsLive) {
  Result<MachineTopology> topo = discoverTopology("");
  ASSERT_TRUE(topo.isOk()) << topo.status().message();
  EXPECT_GE(topo.value().numaNodes.size(), 1u);
  EXPECT_EQ(topo.value().source, "live");
  EXPECT_FALSE(topo.value().describe().empty());
}

}  // namespace
}  // namespace weft

#include "topology/search.h"

namespace weft {
namespace {

TEST(TopologySearch, Dgx2RingStaysOnNvSwitch) {
  MachineTopology topo = load("nvidiaDGX2.xml");
  RingChoice ring = searchRing(topo, topo.gpus);
  ASSERT_EQ(ring.order.size(), 16u);
  EXPECT_EQ(ring.worstClass, PathClass::NvSwitch);
  EXPECT_DOUBLE_EQ(ring.bottleneckGBps, 150.0);
  EXPECT_EQ(ring.socketCrossings, 0);
  std::vector<int> sorted = ring.order;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 16; ++i) EXPECT_EQ(sorted[i], i) << "every GPU exactly once";
}

TEST(TopologySearch, PcieRingsCrossSocketsTheMinimumNumberOfTimes) {
  for (const char* file : {"24em64t-2n6c2t-pci.xml", "32em64t-2n8c2t-pci-wholeio.xml", "power8gpudistances.xml"}) {
    MachineTopology topo = load(file);
    RingChoice ring = searchRing(topo, topo.gpus);
    // Two sockets with GPUs on both: a ring must cross twice, and no more.
    std::set<int> packages;
    for (int gpu : topo.gpus) packages.insert(topo.nodes[gpu].package);
    EXPECT_EQ(ring.socketCrossings, packages.size() > 1 ? 2 : 0) << file;
  }
  // On the POWER8 the NVLink pairs stay adjacent: the ring crosses only on the PCIe hops.
  MachineTopology power8 = load("power8gpudistances.xml");
  RingChoice ring = searchRing(power8, power8.gpus);
  int nvlinkHops = 0;
  for (size_t i = 0; i < ring.order.size(); ++i) {
    int a = power8.gpus[ring.order[i]], b = power8.gpus[ring.order[(i + 1) % ring.order.size()]];
    nvlinkHops += power8.path(a, b).cls == PathClass::NvLink;
  }
  EXPECT_EQ(nvlinkHops, 2);
}

TEST(TopologySearch, DoubleTreesAreTreesAndNoRankIsInnerInBoth) {
  for (int n = 1; n <= 64; ++n) {
    DoubleTree trees = buildDoubleTree(n);
    for (int t = 0; t < 2; ++t) {
      int roots = 0;
      for (int r = 0; r < n; ++r) {
        if (trees.parent[t][r] < 0) ++roots;
        // Walking up reaches the root within n steps: no cycles.
        int steps = 0;
        for (int up = r; up >= 0 && steps <= n; up = trees.parent[t][up]) ++steps;
        ASSERT_LE(steps, n) << "cycle in tree " << t << " of " << n;
        ASSERT_LE(trees.children[t][r].size(), 2u);
      }
      ASSERT_EQ(roots, 1) << "tree " << t << " of " << n;
    }
    int innerInBoth = 0;
    for (int r = 0; r < n; ++r) innerInBoth += !trees.children[0][r].empty() && !trees.children[1][r].empty();
    // Every rank is a leaf in at least one tree, so each sends its share of
    // the data down only once.
    EXPECT_EQ(innerInBoth, 0) << n << " ranks";
  }
}

TEST(TopologySearch, DgxH100SyntheticRingsOnNvSwitchAndPairsEachGpuWithANicOnItsSwitch) {
  MachineTopology topo = load("dgxH100-synthetic.xml");
  ASSERT_EQ(topo.gpus.size(), 8u);
  Path pair = topo.path(topo.gpus[0], topo.gpus[7]);
  EXPECT_EQ(pair.cls, PathClass::NvSwitch);
  EXPECT_DOUBLE_EQ(pair.bottleneckGBps, 450.0);  // 18 NVLink4 links x 25 GB/s
  RingChoice ring = searchRing(topo, topo.gpus);
  EXPECT_EQ(ring.worstClass, PathClass::NvSwitch);
  EXPECT_EQ(ring.socketCrossings, 0);
  std::vector<int> nearest = nearestNics(topo);
  for (size_t g = 0; g < nearest.size(); ++g)
    EXPECT_EQ(topo.path(topo.gpus[g], topo.nics[nearest[g]]).cls, PathClass::PciSwitch) << "GPU " << g;
  // Two GPUs and two NICs per switch: each GPU gets a NIC of its own.
  std::set<int> distinct(nearest.begin(), nearest.end());
  EXPECT_EQ(distinct.size(), 8u);
}

TEST(TopologySearch, PcieBoxPathsAndRing) {
  MachineTopology topo = load("pcie8gpu-synthetic.xml");
  ASSERT_EQ(topo.gpus.size(), 8u);
  EXPECT_EQ(topo.path(topo.gpus[0], topo.gpus[1]).cls, PathClass::PciSwitch);
  EXPECT_EQ(topo.path(topo.gpus[0], topo.gpus[2]).cls, PathClass::HostBridge);
  EXPECT_EQ(topo.path(topo.gpus[0], topo.gpus[4]).cls, PathClass::CrossSocket);
  EXPECT_NEAR(topo.path(topo.gpus[0], topo.gpus[1]).bottleneckGBps, 15.75, 0.01);  // PCIe Gen3 x16
  RingChoice ring = searchRing(topo, topo.gpus);
  EXPECT_EQ(ring.socketCrossings, 2);
  // Same-switch pairs stay adjacent: of 8 hops, 2 cross sockets, and at
  // least 4 stay under one switch.
  int sameSwitch = 0;
  for (size_t i = 0; i < ring.order.size(); ++i)
    sameSwitch += topo.path(topo.gpus[ring.order[i]], topo.gpus[ring.order[(i + 1) % 8]]).cls == PathClass::PciSwitch;
  EXPECT_GE(sameSwitch, 4);
}

TEST(TopologySearch, HostRanksAreGroupedByNumaNode) {
  EXPECT_EQ(hostRingOrder({1, 0, 1, 0, 2}), (std::vector<int>{1, 3, 0, 2, 4}));
  EXPECT_EQ(hostRingOrder({0, 0, 0}), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(hostRingOrder({-1, 3, -1}), (std::vector<int>{0, 2, 1}));
}

TEST(TopologySearch, RanksSharingADeviceStayTogetherAndChannelsFollowTheBandwidth) {
  MachineTopology dgx = load("nvidiaDGX2.xml");
  // Two ranks on each of the first four GPUs, given out of order.
  std::vector<int> deviceOfRank;
  for (int g : {2, 0, 3, 1, 0, 2, 1, 3}) deviceOfRank.push_back(dgx.gpus[g]);
  RankRing ring = searchRankRing(dgx, deviceOfRank, 16);
  ASSERT_EQ(ring.order.size(), 8u);
  for (size_t i = 0; i < 8; i += 2)
    EXPECT_EQ(deviceOfRank[ring.order[i]], deviceOfRank[ring.order[i + 1]]) << "ranks of one GPU are neighbours";
  EXPECT_EQ(ring.devices.worstClass, PathClass::NvSwitch);
  EXPECT_EQ(ring.channels, 8);  // 150 GB/s at 20 GB/s a channel
  EXPECT_EQ(searchRankRing(dgx, deviceOfRank, 4).channels, 4);
  EXPECT_EQ(searchRankRing(dgx, {dgx.gpus[5], dgx.gpus[5]}, 16).channels, 1);

  // Host ranks on a two-socket machine: one NUMA node per socket, ranks
  // grouped by node, the ring crossing between the sockets twice; bandwidth
  // unknown, so one channel.
  MachineTopology host = load("24em64t-2n6c2t-pci.xml");
  ASSERT_EQ(host.numaNodes.size(), 2u);
  std::vector<int> numaOfRank = {host.numaNodes[1], host.numaNodes[0], host.numaNodes[1], host.numaNodes[0]};
  RankRing hostRing = searchRankRing(host, numaOfRank, 16);
  EXPECT_EQ(hostRing.devices.socketCrossings, 2);
  EXPECT_EQ(hostRing.channels, 1);
  ASSERT_EQ(hostRing.order.size(), 4u);
  EXPECT_EQ(numaOfRank[hostRing.order[0]], numaOfRank[hostRing.order[1]]);
  EXPECT_EQ(numaOfRank[hostRing.order[2]], numaOfRank[hostRing.order[3]]);

  RingChoice pcie;
  pcie.bottleneckGBps = 31.5;  // PCIe 4 x16
  EXPECT_EQ(channelsForRing(pcie, 16), 2);
  pcie.bottleneckGBps = 0;
  EXPECT_EQ(channelsForRing(pcie, 16), 1);
}

TEST(TopologySearch, GpusPickTheClosestNic) {
  MachineTopology topo = load("32em64t-2n8c2t-pci-wholeio.xml");
  std::vector<int> nearest = nearestNics(topo);
  ASSERT_EQ(nearest.size(), topo.gpus.size());
  for (size_t g = 0; g < nearest.size(); ++g) {
    ASSERT_GE(nearest[g], 0);
    Path chosen = topo.path(topo.gpus[g], topo.nics[nearest[g]]);
    for (int nic : topo.nics) {
      Path other = topo.path(topo.gpus[g], nic);
      EXPECT_LE(static_cast<int>(chosen.cls), static_cast<int>(other.cls)) << "GPU " << g;
    }
  }
}

}  // namespace
}  // namespace weft

#include "topology/topology_xml.h"

namespace weft {
namespace {

void expectSameGraph(const MachineTopology& a, const MachineTopology& b, const char* what) {
  ASSERT_EQ(a.nodes.size(), b.nodes.size()) << what;
  for (size_t i = 0; i < a.nodes.size(); ++i) {
    const TopoNode& x = a.nodes[i];
    const TopoNode& y = b.nodes[i];
    EXPECT_TRUE(x.kind == y.kind && x.name == y.name && x.detail == y.detail && x.busId == y.busId &&
                x.parent == y.parent && x.children == y.children && x.numa == y.numa && x.package == y.package &&
                x.linkGBps == y.linkGBps && x.nicGBps == y.nicGBps)
        << what << ": node " << i << " (" << x.name << ") differs after the round trip";
  }
  EXPECT_EQ(a.gpus, b.gpus) << what;
  EXPECT_EQ(a.nics, b.nics) << what;
  EXPECT_EQ(a.numaNodes, b.numaNodes) << what;
  EXPECT_EQ(a.packages, b.packages) << what;
  EXPECT_EQ(a.nvlinkGBps, b.nvlinkGBps) << what;
  EXPECT_EQ(a.nvswitchGBps, b.nvswitchGBps) << what;
}

TEST(TopologyXml, DumpThenLoadGivesTheSameGraphForEveryMachine) {
  for (const char* file :
       {"nvidiaDGX2.xml", "power8gpudistances.xml", "24em64t-2n6c2t-pci.xml", "32em64t-2n8c2t-pci-wholeio.xml",
        "96em64t-4n4d3ca2co-pci.xml", "dgxH100-synthetic.xml", "pcie8gpu-synthetic.xml"}) {
    MachineTopology original = load(file);
    std::string dumped = ::testing::TempDir() + "/weft_roundtrip.xml";
    ASSERT_TRUE(writeTopologyXml(original, dumped).isOk());
    ASSERT_TRUE(isWeftTopologyXml(dumped));
    Result<MachineTopology> loaded = discoverTopology(dumped);  // detects weft's format
    ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
    expectSameGraph(original, loaded.value(), file);
    // Paths and rings computed from the reloaded graph are the same too.
    if (!original.gpus.empty()) {
      RingChoice a = searchRing(original, original.gpus), b = searchRing(loaded.value(), loaded.value().gpus);
      EXPECT_EQ(a.order, b.order) << file;
      EXPECT_EQ(a.bottleneckGBps, b.bottleneckGBps) << file;
    }
    std::remove(dumped.c_str());
  }
}

TEST(TopologyXml, BrokenFilesOfOurOwnFormatAreRefusedWithTheReason) {
  std::string path = ::testing::TempDir() + "/weft_broken.xml";
  auto attempt = [&](const std::string& text) {
    std::ofstream(path) << text;
    Result<MachineTopology> topo = readTopologyXml(path);
    return topo.isOk() ? std::string("loaded") : topo.status().message();
  };
  EXPECT_NE(attempt("<weft-topology version=\"1\" source=\"x\" gpus=\"\" nics=\"\" numa=\"\" packages=\"\">"
                    "<node id=\"0\" kind=\"machine\"")
                .find("cannot parse"),
            std::string::npos);
  EXPECT_NE(attempt("<?xml version=\"1.0\"?><weft-topology version=\"1\" source=\"x\" gpus=\"\" nics=\"\" numa=\"\" "
                    "packages=\"\"><node id=\"0\" kind=\"toaster\" parent=\"-1\" name=\"m\" busid=\"\" numa=\"-1\" "
                    "package=\"-1\" link_gbps=\"0\" detail=\"\"/></weft-topology>")
                .find("unknown node kind"),
            std::string::npos);
  EXPECT_NE(attempt("<?xml version=\"1.0\"?><weft-topology version=\"1\" source=\"x\" gpus=\"3\" nics=\"\" numa=\"\" "
                    "packages=\"\"><node id=\"0\" kind=\"machine\" parent=\"-1\" name=\"m\" busid=\"\" numa=\"-1\" "
                    "package=\"-1\" link_gbps=\"0\" detail=\"\"/></weft-topology>")
                .find("does not exist"),
            std::string::npos);
  EXPECT_NE(attempt("<?xml version=\"1.0\"?><weft-topology version=\"1\" source=\"x\" gpus=\"\" nics=\"\" numa=\"\" "
                    "packages=\"\"><node id=\"0\" kind=\"machine\" parent=\"-1\" name=\"m\" busid=\"\" numa=\"-1\" "
                    "package=\"-1\" link_gbps=\"0\"/></weft-topology>")
                .find("lacks attribute detail"),
            std::string::npos);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace weft

#include "topology/affinity.h"

namespace weft {
namespace {

TEST(TopologyAffinity, CpuListsParseAndPrint) {
  cpu_set_t set;
  ASSERT_TRUE(parseCpuList("0-3,8,10-11\n", &set));
  EXPECT_EQ(CPU_COUNT(&set), 7);
  EXPECT_TRUE(CPU_ISSET(8, &set));
  EXPECT_FALSE(CPU_ISSET(9, &set));
  EXPECT_EQ(describeCpuSet(set), "0-3,8,10-11");
  EXPECT_FALSE(parseCpuList("3-1", &set));
  EXPECT_FALSE(parseCpuList("x", &set));
  EXPECT_FALSE(parseCpuList("", &set));
}

TEST(TopologyAffinity, ThisMachinesNumaNodeHasTheCpusWeMayRunOn) {
  unsigned cpu = 0, numa = 0;
  ASSERT_EQ(getcpu(&cpu, &numa), 0);
  cpu_set_t set;
  if (!numaNodeCpus(static_cast<int>(numa), &set)) GTEST_SKIP() << "no /sys NUMA information here";
  EXPECT_TRUE(CPU_ISSET(static_cast<int>(cpu), &set)) << "CPU " << cpu << " not in " << describeCpuSet(set);
  EXPECT_FALSE(numaNodeCpus(-1, &set));
  EXPECT_FALSE(numaNodeCpus(4096, &set));
}

}  // namespace
}  // namespace weft

#include <sys/stat.h>

#include "topology/nic_speed.h"
#include "topology/nvml.h"

namespace weft {
namespace {

TEST(TopologyNvml, LinksFromNvmlMakeNvLinkAndNvSwitchPaths) {
  Result<std::vector<NvmlGpuLinks>> links = queryNvmlLinks(WEFT_TEST_FAKE_NVML);
  ASSERT_TRUE(links.isOk()) << links.status().message();
  ASSERT_EQ(links.value().size(), 5u);
  EXPECT_EQ(links.value()[0].busId, "0000:12:00.0");
  EXPECT_EQ(links.value()[0].links.size(), 6u);
  EXPECT_EQ(links.value()[2].links.size(), 5u);  // one link down
  EXPECT_TRUE(links.value()[4].links.empty());

  MachineTopology topo = load("pcie8gpu-synthetic.xml");
  ASSERT_EQ(topo.gpus.size(), 8u);
  EXPECT_EQ(topo.path(topo.gpus[0], topo.gpus[1]).cls, PathClass::PciSwitch);
  // 6 + 6 + 5 + 5 links; the fifth GPU is not in this topology.
  EXPECT_EQ(applyNvmlLinks(links.value(), &topo), 22);
  Path pair = topo.path(topo.gpus[0], topo.gpus[1]);
  EXPECT_EQ(pair.cls, PathClass::NvLink);
  EXPECT_EQ(pair.bottleneckGBps, 50.0);  // two NVLink 3 links
  Path switched = topo.path(topo.gpus[0], topo.gpus[2]);
  EXPECT_EQ(switched.cls, PathClass::NvSwitch);
  EXPECT_EQ(switched.bottleneckGBps, 100.0);  // four of GPU 0's six links go to the switch
  // GPUs NVML did not describe keep their PCIe paths.
  EXPECT_EQ(topo.path(topo.gpus[4], topo.gpus[5]).cls, PathClass::PciSwitch);
  EXPECT_EQ(topo.path(topo.gpus[0], topo.gpus[4]).cls, PathClass::CrossSocket);
}

TEST(TopologyNvml, AMissingLibraryIsAnErrorThatSaysSo) {
  Result<std::vector<NvmlGpuLinks>> links = queryNvmlLinks("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(links.isOk());
  EXPECT_NE(links.status().message().find("NVML not loaded"), std::string::npos) << links.status().message();
  // A library without NVML's symbols.
  links = queryNvmlLinks("libm.so.6");
  ASSERT_FALSE(links.isOk());
  EXPECT_NE(links.status().message().find("lacks nvmlInit_v2"), std::string::npos) << links.status().message();
  EXPECT_EQ(nvlinkLinkGBps(4), 25.0);
  EXPECT_EQ(nvlinkLinkGBps(9), 0.0);
}

void writeFile(const std::string& path, const std::string& text) {
  std::string dir = path.substr(0, path.rfind('/'));
  for (size_t at = 1; at != std::string::npos; at = dir.find('/', at + 1)) mkdir(dir.substr(0, at).c_str(), 0755);
  mkdir(dir.c_str(), 0755);
  std::ofstream(path) << text;
}

TEST(TopologyNicSpeed, RatesFromASysfsTree) {
  EXPECT_EQ(ibRateGBps("400 Gb/sec (4X NDR)"), 50.0);
  EXPECT_EQ(ibRateGBps("100 Gb/sec (4X EDR)\n"), 12.5);
  EXPECT_EQ(ibRateGBps("garbage"), 0.0);
  std::string root = ::testing::TempDir() + "/weft_sysfs_" + std::to_string(getpid());
  writeFile(root + "/class/infiniband/mlx5_0/ports/1/rate", "400 Gb/sec (4X NDR)\n");
  writeFile(root + "/class/infiniband/mlx5_0/ports/1/state", "4: ACTIVE\n");
  writeFile(root + "/class/infiniband/mlx5_1/ports/1/rate", "200 Gb/sec (4X HDR)\n");
  writeFile(root + "/class/infiniband/mlx5_1/ports/1/state", "1: DOWN\n");
  writeFile(root + "/class/net/eth0/speed", "25000\n");
  writeFile(root + "/class/net/veth0/speed", "-1\n");
  std::map<std::string, double> speeds = sysfsNicSpeeds(root);
  EXPECT_EQ(speeds.size(), 2u);
  EXPECT_EQ(speeds["mlx5_0"], 50.0);
  EXPECT_EQ(speeds.count("mlx5_1"), 0u) << "a port that is down has no speed";
  EXPECT_EQ(speeds["eth0"], 3.125);
  EXPECT_TRUE(sysfsNicSpeeds(root + "/missing").empty());
  std::system(("rm -rf " + root).c_str());
}

TEST(TopologyNicSpeed, LiveSpeedsLandOnTheNicsOfTheGraph) {
  Result<MachineTopology> topo = discoverTopology("");
  ASSERT_TRUE(topo.isOk()) << topo.status().message();
  std::map<std::string, double> speeds = liveNicSpeeds();
  // Every NIC whose OS device has a known speed carries it.
  for (int nic : topo.value().nics) {
    const TopoNode& node = topo.value().nodes[nic];
    double expected = 0;
    for (const auto& [name, gbps] : speeds)
      if (node.detail.find("[" + name + "]") != std::string::npos) expected = std::max(expected, gbps);
    EXPECT_EQ(node.nicGBps, expected) << node.name << " " << node.detail;
  }
}

}  // namespace
}  // namespace weft
