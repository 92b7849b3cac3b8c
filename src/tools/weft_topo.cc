// weft-topo: the machine as weft sees it — the tree, and the GPU x GPU and
// GPU x NIC path matrices with their bottleneck bandwidths.
//   weft-topo [--topo FILE]   (FILE: an hwloc XML export; default WEFT_TOPO_FILE, else live)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "algorithms/tuner.h"
#include "core/env.h"
#include "topology/machine.h"
#include "topology/search.h"
#include "topology/topology_xml.h"

using namespace weft;

static std::string cell(const Path& path) {
  if (path.cls == PathClass::Same) return "-";
  const char* tag = path.cls == PathClass::NvLink       ? "NVL"
                    : path.cls == PathClass::NvSwitch   ? "NVS"
                    : path.cls == PathClass::PciSwitch  ? "PIX"
                    : path.cls == PathClass::HostBridge ? "PHB"
                                                        : "SYS";
  if (path.bottleneckGBps <= 0) return tag;
  return format(path.bottleneckGBps < 10 ? "%s/%.1f" : "%s/%.0f", tag, path.bottleneckGBps);
}

// One row per GPU, one column per device of columns.
static void printPathMatrix(const MachineTopology& topo, const std::vector<int>& columns, const char* columnName) {
  printf("%8s", "");
  for (size_t j = 0; j < columns.size(); ++j) printf("%9s", format("%s%zu", columnName, j).c_str());
  printf("\n");
  for (size_t i = 0; i < topo.gpus.size(); ++i) {
    printf("%8s", format("GPU%zu", i).c_str());
    for (int column : columns) printf("%9s", cell(topo.path(topo.gpus[i], column)).c_str());
    printf("\n");
  }
}

int main(int argc, char** argv) {
  std::string file = envString(EnvParam::TopoFile);
  bool xml = false;
  int ranks = 0;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--topo") == 0 && i + 1 < argc)
      file = argv[++i];
    else if (strcmp(argv[i], "--ranks") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0)
      ranks = atoi(argv[++i]);
    else if (strcmp(argv[i], "--xml") == 0)
      xml = true;
    else {
      printf(
          "usage: weft-topo [--topo FILE] [--xml] [--ranks N]\n"
          "  prints the machine tree, the GPU/NIC path matrices, rings and trees;\n"
          "  --ranks N: the ring, channels and trees for N ranks, one per GPU in order,\n"
          "  wrapping around (several ranks share a GPU when N exceeds the GPUs); default one per GPU;\n"
          "  --topo reads an hwloc XML export or a file weft-topo --xml wrote;\n"
          "  --xml prints weft's own XML of the machine instead (loadable again).\n"
          "  WEFT_TOPO_DUMP_FILE=path also writes that XML to path.\n");
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  Result<MachineTopology> found = discoverTopology(file);
  if (!found.isOk()) {
    fprintf(stderr, "weft-topo: %s\n", found.status().message().c_str());
    return 1;
  }
  const MachineTopology& topo = found.value();
  if (envIsSet(EnvParam::TopoDumpFile)) {
    Status written = writeTopologyXml(topo, envString(EnvParam::TopoDumpFile));
    if (!written.isOk()) fprintf(stderr, "weft-topo: %s\n", written.message().c_str());
  }
  if (xml) {
    printf("%s", topologyToXml(topo).c_str());
    return 0;
  }
  printf("# machine (%s): %zu package(s), %zu NUMA node(s), %zu GPU(s), %zu NIC(s)\n", topo.source.c_str(),
         topo.packages.size(), topo.numaNodes.size(), topo.gpus.size(), topo.nics.size());
  printf("%s", topo.describe().c_str());
  if (topo.gpus.empty()) {
    printf("\n# no GPUs: no NVIDIA display or 3D controller on the PCI bus%s\n",
           file.empty() ? " (weft runs on host memory here)" : " of this file");
    return 0;
  }
  printf(
      "\n# GPU x GPU: path class / bottleneck GB/s (NVL NVLink, NVS NVSwitch, PIX PCIe switch, PHB host "
      "bridge, SYS across sockets)\n");
  printPathMatrix(topo, topo.gpus, "GPU");
  if (!topo.nics.empty()) {
    printf("\n# GPU x NIC\n");
    printPathMatrix(topo, topo.nics, "NIC");
  }
  if (ranks == 0) ranks = static_cast<int>(topo.gpus.size());
  std::vector<int> deviceOfRank;
  deviceOfRank.reserve(static_cast<size_t>(ranks));
  for (int r = 0; r < ranks; ++r) deviceOfRank.push_back(topo.gpus[static_cast<size_t>(r) % topo.gpus.size()]);
  RankRing rankRing = searchRankRing(topo, deviceOfRank, Tuner::kMaxChannels);
  const RingChoice& ring = rankRing.devices;
  auto gpuNumber = [&](int node) {
    return static_cast<int>(std::find(topo.gpus.begin(), topo.gpus.end(), node) - topo.gpus.begin());
  };
  printf("\n# ring over %d rank(s) on %zu GPU(s):", ranks, ring.order.size());
  for (int r : rankRing.order) printf(" %d(GPU%d)", r, gpuNumber(deviceOfRank[r]));
  printf(
      " (back to rank %d)\n#   slowest hop %.1f GB/s (%s), %d socket crossing(s); all-reduce busbw by the cost model: "
      "%.1f GB/s\n",
      rankRing.order.empty() ? 0 : rankRing.order[0], ring.bottleneckGBps, pathClassName(ring.worstClass),
      ring.socketCrossings, ringAllReduceBusBw(ring));
  printf("#   %d channel(s) at %.0f GB/s each (odd channels run the ring backwards)\n", rankRing.channels,
         kChannelGBps);
  DoubleTree trees = buildDoubleTree(ranks);
  for (int t = 0; t < 2; ++t) {
    printf("# tree %d (parent of each ring position):", t);
    for (int parent : trees.parent[t]) printf(" %d", parent);
    printf("\n");
  }
  if (!topo.nics.empty()) {
    std::vector<int> nearest = nearestNics(topo);
    printf("# nearest NIC:");
    for (size_t g = 0; g < nearest.size(); ++g) printf(" GPU%zu->NIC%d", g, nearest[g]);
    printf("\n");
  }
  return 0;
}
