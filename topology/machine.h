// The machine as weft sees it: a typed tree built from hwloc (live, or an
// hwloc XML file), plus the NVLink bandwidth between GPUs from hwloc's
// NVLinkBandwidth distance matrix, and path classes between devices.
//
// On a live machine it adds what hwloc does not know: NIC port speeds
// (libibverbs, sysfs) and, where hwloc has no NVLink matrix, NVLink from NVML.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace weft {

enum class TopoKind { Machine, Package, NumaNode, HostBridge, PciSwitch, Gpu, Nic, NvSwitch, PciDevice };
const char* topoKindName(TopoKind kind);

struct TopoNode {
  TopoKind kind = TopoKind::Machine;
  std::string name;    // "GPU 3", "NIC mlx5_0", "NUMA 1", ...
  std::string detail;  // model, OS device names
  std::string busId;   // PCI devices: dddd:bb:dd.f
  int parent = -1;
  std::vector<int> children;
  int numa = -1;        // NUMA node (os index) this node hangs off
  int package = -1;     // package (os index)
  double linkGBps = 0;  // PCIe link to the parent, GB/s (0: unknown)
  double nicGBps = 0;   // NICs: port speed, GB/s (0: unknown; known on live machines)
};

// How two devices reach each other, best first.
enum class PathClass { Same, NvLink, NvSwitch, PciSwitch, HostBridge, CrossSocket };
const char* pathClassName(PathClass path);

struct Path {
  PathClass cls = PathClass::CrossSocket;
  double bottleneckGBps = 0;  // 0: unknown
};

struct MachineTopology {
  std::vector<TopoNode> nodes;  // nodes[0] is the machine
  std::vector<int> gpus;        // node indices, in PCI order
  std::vector<int> nics;        // one per NIC PCI device
  std::vector<int> numaNodes;
  std::vector<int> packages;
  // GB/s of direct NVLink between GPUs i and j (indices into gpus), and of
  // each GPU's links into NVSwitches.
  std::vector<std::vector<double>> nvlinkGBps;
  std::vector<double> nvswitchGBps;
  std::string source;  // "live" or the file

  Path path(int nodeA, int nodeB) const;
  // The GPU node with this PCI bus id, as CUDA (cudaDeviceGetPCIBusId,
  // "0000:3B:00.0") or NVML ("00000000:3b:00.0") writes it; -1 if none.
  int gpuByBusId(const std::string& busId) const;
  // The tree as text, one node per line.
  std::string describe() const;
  // The port speed of the fastest NIC, GB/s (0 when no NIC speed is known).
  double fastestNicGBps() const;
};

// Discovers the machine: from xmlFile when given, else live. Errors name the
// file and what hwloc said.
Result<MachineTopology> discoverTopology(const std::string& xmlFile);

// What communicators of this process use: the machine from WEFT_TOPO_FILE
// when set, else live, discovered once per file. topo is null when that
// failed, and problem says why (communicators then fall back to the NUMA
// node each rank runs on, with a warning).
struct ProcessTopology {
  std::shared_ptr<const MachineTopology> topo;
  std::string file;  // "" for live
  std::string problem;
};
ProcessTopology processTopology();

}  // namespace weft
