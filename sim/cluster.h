// Clusters for weft-sim: the machine a replay runs on, from a spec file or
// a preset. A spec is JSON (format version 1), every field optional over
// the preset or defaults it names:
//   {
//     "version": 1,
//     "preset": "host-2core",            // start from a preset (optional)
//     "nodes": 2, "ranksPerNode": 4,
//     "intraNode": {"latencyUs": 0.2, "gbps": 10,    // a link between two ranks of a node,
//                   "switched": false},               // or each rank's switch port (NVSwitch)
//     "network":   {"latencyUs": 10,  "gbps": 12.5}, // a NIC, each way
//     "nicsPerNode": 1,                               // rails: local rank i uses NIC i % nicsPerNode
//     "fabric": {"nodesPerLeaf": 32,                  // a leaf switch per rail (0: one switch)
//                "oversubscription": 1},              // a leaf's downlinks over its uplinks
//     "sites": {"count": 2,                           // nodes split into equal sites, joined by
//               "wan": {"latencyUs": 5000, "gbps": 0.125,   // WAN links, each way (one-way latency):
//                       "perNode": false}},                 // one per pair of sites, or each node's own
//     "channels": 0,                                  // weft-sim's default channels (0: the tuner's)
//     "nodeTopology": "dgx2.xml",                     // the node from a topology file (applyNodeTopology;
//                                                     // relative to the spec's folder), before the rest
//     "node": {"memoryGBps": 33,                      // a node's memory (0: not modelled)
//              "cores": 2},                           // cores its ranks share (0: one each)
//     "rank": {"copyGBps": 20, "reduceGBps": 10, "stepUs": 0.1,   // one rank's engine,
//              "switchUs": 2.7,                                   // a hand-off with ranks > cores
//              "enginePerChannel": false},                        // or each channel's (GPU blocks)
//     "fifo": {"slotBytes": 131072, "slots": 8}
//   }
// Rates are GB/s (1e9 bytes per second), latencies microseconds.
// Presets: host-2core (the tuner's cost constants: the shipped defaults, or
// WEFT_TUNE_FILE's, as weft-info --calibrate measures them), dgx-h100 (8
// GPUs on NVSwitch, 16 channels; rates in cluster.cc with where they come
// from), dgx-h100-pod (nodes of 8 such GPUs, 8 x 400 Gbit/s NICs a node on
// a rail-optimised fat tree of 32-node leaves; "nodes" sets how many),
// sites (2 sites x 2 one-rank nodes, each node with a link of 1 Gbit/s and
// 10 ms round trip to the other site: the multi-site namespace test).
#pragma once

#include <string>
#include <vector>

#include "algorithms/cost_model.h"
#include "core/status.h"
#include "sim/replay.h"

namespace weft::sim {

struct Cluster {
  std::string name;
  int nodes = 1;
  int ranksPerNode = 2;
  int sites = 1;         // the nodes split into this many equal sites, in order
  int channels = 0;      // weft-sim's channels when none are asked for (0: the tuner's)
  MachineModel machine;  // nranks and nodeOfRank follow nodes x ranksPerNode
};

std::vector<std::string> clusterPresets();
// A preset by name.
Result<Cluster> presetCluster(const std::string& name);
// A spec's text (JSON); errors name the field. baseDir: where a relative
// nodeTopology path starts (the spec file's folder).
Result<Cluster> parseClusterSpec(const std::string& json, const std::string& baseDir = "");
// A node of the machine a topology file describes (an hwloc XML export,
// or weft's own): a rank per GPU with an engine per channel, its pairs'
// links at the topology's path bandwidths (NVLink, PCIe, across sockets),
// or a switch port per GPU where every pair goes through NVSwitches; its
// NICs as rails, at the fastest NIC's speed where the file knows it. A
// machine without GPUs keeps the spec's ranks.
Status applyNodeTopology(const std::string& path, Cluster* cluster);
// A preset name, or the path of a spec file.
Result<Cluster> loadCluster(const std::string& nameOrPath);
// A spec (JSON text, format version 1) of one node of this host from the
// cost constants weft-info --calibrate measures, with `cores` cores: links
// between its ranks at the hand-off latency and copy rate, its memory at
// what all cores copy together, and the network's constants as given.
std::string calibratedSpec(const CostConstants& constants, int cores, const std::string& name);
// Fills machine.nranks, nodeOfRank and siteOfNode from nodes, ranksPerNode and sites.
void layOut(Cluster* cluster);

}  // namespace weft::sim
