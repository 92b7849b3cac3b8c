#include "topology/machine.h"

#include <hwloc.h>

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "core/env.h"
#include "core/logging.h"
#include "topology/nic_speed.h"
#include "topology/nvml.h"
#include "topology/topology_xml.h"

namespace weft {

const char* topoKindName(TopoKind kind) {
  switch (kind) {
    case TopoKind::Machine: return "machine";
    case TopoKind::Package: return "package";
    case TopoKind::NumaNode: return "numa";
    case TopoKind::HostBridge: return "hostbridge";
    case TopoKind::PciSwitch: return "pciswitch";
    case TopoKind::Gpu: return "gpu";
    case TopoKind::Nic: return "nic";
    case TopoKind::NvSwitch: return "nvswitch";
    case TopoKind::PciDevice: return "pci";
  }
  return "?";
}

const char* pathClassName(PathClass path) {
  switch (path) {
    case PathClass::Same: return "same device";
    case PathClass::NvLink: return "NVLink";
    case PathClass::NvSwitch: return "NVSwitch";
    case PathClass::PciSwitch: return "PCIe switch";
    case PathClass::HostBridge: return "host bridge";
    case PathClass::CrossSocket: return "across sockets";
  }
  return "?";
}

namespace {

constexpr unsigned kNvidia = 0x10de;

class Builder {
 public:
  // nicSpeeds: port speeds by OS device name (live machines), or null.
  Builder(hwloc_topology_t topology, const std::map<std::string, double>* nicSpeeds)
      : topology_(topology), nicSpeeds_(nicSpeeds) {}

  MachineTopology build(const std::string& source) {
    out_.source = source;
    TopoNode machine;
    machine.kind = TopoKind::Machine;
    machine.name = "machine";
    out_.nodes.push_back(machine);
    walk(hwloc_get_root_obj(topology_), 0);
    readNvLink();
    return std::move(out_);
  }

 private:
  int add(TopoNode node, int parent) {
    node.parent = parent;
    out_.nodes.push_back(node);
    int index = static_cast<int>(out_.nodes.size()) - 1;
    if (parent >= 0) out_.nodes[parent].children.push_back(index);
    return index;
  }

  // The package and NUMA node an I/O object hangs off.
  void locate(hwloc_obj_t obj, TopoNode* node) {
    hwloc_obj_t anchor = hwloc_get_non_io_ancestor_obj(topology_, obj);
    for (hwloc_obj_t up = anchor; up != nullptr; up = up->parent)
      if (up->type == HWLOC_OBJ_PACKAGE) {
        node->package = static_cast<int>(up->os_index);
        break;
      }
    if (anchor != nullptr && anchor->nodeset != nullptr && !hwloc_bitmap_iszero(anchor->nodeset))
      node->numa = hwloc_bitmap_first(anchor->nodeset);
  }

  static std::string busId(hwloc_obj_t obj) {
    char text[32];
    snprintf(text, sizeof(text), "%04x:%02x:%02x.%x", obj->attr->pcidev.domain, obj->attr->pcidev.bus,
             obj->attr->pcidev.dev, obj->attr->pcidev.func);
    return text;
  }

  void walkIo(hwloc_obj_t obj, int parent) {
    int self = parent;
    if (obj->type == HWLOC_OBJ_BRIDGE) {
      TopoNode node;
      bool host = obj->attr->bridge.upstream_type == HWLOC_OBJ_BRIDGE_HOST;
      node.kind = host ? TopoKind::HostBridge : TopoKind::PciSwitch;
      node.name = host ? "host bridge" : "PCIe switch";
      if (!host) {
        node.busId = busId(obj);
        node.linkGBps = obj->attr->bridge.upstream.pci.linkspeed;
      }
      locate(obj, &node);
      self = add(node, parent);
    } else if (obj->type == HWLOC_OBJ_PCI_DEVICE) {
      TopoNode node;
      unsigned vendor = obj->attr->pcidev.vendor_id;
      unsigned cls = obj->attr->pcidev.class_id;
      node.busId = busId(obj);
      node.linkGBps = obj->attr->pcidev.linkspeed;
      if (vendor == kNvidia && (cls == 0x0300 || cls == 0x0302))
        node.kind = TopoKind::Gpu;
      else if (vendor == kNvidia && cls == 0x0680)
        node.kind = TopoKind::NvSwitch;
      else if ((cls >> 8) == 0x02)
        node.kind = TopoKind::Nic;
      else
        node.kind = TopoKind::PciDevice;
      const char* model = hwloc_obj_get_info_by_name(obj, "PCIDevice");
      node.detail = model != nullptr ? model : "";
      locate(obj, &node);
      self = add(node, parent);
      pciNodes_[obj] = self;
      if (node.kind == TopoKind::Gpu) {
        out_.nodes[self].name = "GPU " + std::to_string(out_.gpus.size());
        out_.gpus.push_back(self);
      } else if (node.kind == TopoKind::Nic) {
        out_.nodes[self].name = "NIC " + std::to_string(out_.nics.size());
        out_.nics.push_back(self);
      } else if (node.kind == TopoKind::NvSwitch) {
        out_.nodes[self].name = "NVSwitch";
      } else {
        out_.nodes[self].name = "PCI device";
      }
    } else if (obj->type == HWLOC_OBJ_OS_DEVICE) {
      // Names the device it belongs to: eth0, mlx5_0, nvml3, cuda0, ...
      if (parent >= 0 && obj->name != nullptr) {
        std::string& detail = out_.nodes[parent].detail;
        detail += detail.empty() ? "" : " ";
        detail += std::string("[") + obj->name + "]";
        if (obj->attr->osdev.type == HWLOC_OBJ_OSDEV_OPENFABRICS || obj->attr->osdev.type == HWLOC_OBJ_OSDEV_NETWORK) {
          if (out_.nodes[parent].kind == TopoKind::PciDevice) {
            out_.nodes[parent].kind = TopoKind::Nic;
            out_.nodes[parent].name = "NIC " + std::to_string(out_.nics.size());
            out_.nics.push_back(parent);
          }
          if (nicSpeeds_ != nullptr) {
            auto speed = nicSpeeds_->find(obj->name);
            if (speed != nicSpeeds_->end())
              out_.nodes[parent].nicGBps = std::max(out_.nodes[parent].nicGBps, speed->second);
          }
        }
      }
      return;
    }
    for (hwloc_obj_t child = obj->io_first_child; child != nullptr; child = child->next_sibling) walkIo(child, self);
  }

  void walk(hwloc_obj_t obj, int parent) {
    int self = parent;
    if (obj->type == HWLOC_OBJ_PACKAGE) {
      TopoNode node;
      node.kind = TopoKind::Package;
      node.package = static_cast<int>(obj->os_index);
      node.name = "package " + std::to_string(obj->os_index);
      int cores = hwloc_get_nbobjs_inside_cpuset_by_type(topology_, obj->cpuset, HWLOC_OBJ_CORE);
      int threads = hwloc_get_nbobjs_inside_cpuset_by_type(topology_, obj->cpuset, HWLOC_OBJ_PU);
      node.detail = std::to_string(cores) + " cores, " + std::to_string(threads) + " threads";
      self = add(node, parent);
      out_.packages.push_back(self);
    }
    for (hwloc_obj_t child = obj->memory_first_child; child != nullptr; child = child->next_sibling) {
      if (child->type != HWLOC_OBJ_NUMANODE) continue;
      TopoNode node;
      node.kind = TopoKind::NumaNode;
      node.numa = static_cast<int>(child->os_index);
      node.package = self >= 0 ? out_.nodes[self].package : -1;
      node.name = "NUMA " + std::to_string(child->os_index);
      node.detail = std::to_string(child->attr->numanode.local_memory >> 20) + " MiB";
      out_.numaNodes.push_back(add(node, self));
    }
    for (unsigned i = 0; i < obj->arity; ++i) walk(obj->children[i], self);
    for (hwloc_obj_t child = obj->io_first_child; child != nullptr; child = child->next_sibling) walkIo(child, self);
  }

  // The node of a GPU or NVSwitch an NVLink matrix entry refers to (an OS
  // device or the PCI device itself).
  int nodeOf(hwloc_obj_t obj) {
    while (obj != nullptr && obj->type == HWLOC_OBJ_OS_DEVICE) obj = obj->parent;
    auto it = pciNodes_.find(obj);
    return it == pciNodes_.end() ? -1 : it->second;
  }

  void readNvLink() {
    size_t nGpus = out_.gpus.size();
    out_.nvlinkGBps.assign(nGpus, std::vector<double>(nGpus, 0.0));
    out_.nvswitchGBps.assign(nGpus, 0.0);
    unsigned count = 1;
    hwloc_distances_s* distances = nullptr;
    if (hwloc_distances_get_by_name(topology_, "NVLinkBandwidth", &count, &distances, 0) != 0 || count == 0) return;
    std::map<int, size_t> gpuIndex;
    for (size_t g = 0; g < nGpus; ++g) gpuIndex[out_.gpus[g]] = g;
    unsigned n = distances->nbobjs;
    for (unsigned i = 0; i < n; ++i) {
      int a = nodeOf(distances->objs[i]);
      for (unsigned j = 0; j < n; ++j) {
        if (i == j) continue;
        int b = nodeOf(distances->objs[j]);
        double gbps = static_cast<double>(distances->values[i * n + j]) / 1000.0;  // MB/s
        if (a < 0 || b < 0 || gbps <= 0 || !gpuIndex.count(a)) continue;
        if (gpuIndex.count(b)) {
          out_.nvlinkGBps[gpuIndex[a]][gpuIndex[b]] = gbps;
        } else {
          // A PCI device on the NVLink graph that is not a GPU is an NVSwitch,
          // whatever class code it reports. (CPUs linked by NVLink are not PCI
          // devices and never get here.)
          if (out_.nodes[b].kind != TopoKind::NvSwitch) {
            out_.nodes[b].kind = TopoKind::NvSwitch;
            out_.nodes[b].name = "NVSwitch";
          }
          out_.nvswitchGBps[gpuIndex[a]] += gbps;
        }
      }
    }
    hwloc_distances_release(topology_, distances);
  }

  hwloc_topology_t topology_;
  const std::map<std::string, double>* nicSpeeds_;
  MachineTopology out_;
  std::map<hwloc_obj_t, int> pciNodes_;
};

}  // namespace

Result<MachineTopology> discoverTopology(const std::string& xmlFile) {
  // A file weft wrote itself (weft-topo --xml) loads as it was written.
  if (!xmlFile.empty() && isWeftTopologyXml(xmlFile)) return readTopologyXml(xmlFile);
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) return WEFT_ERROR(weftSystemError, "hwloc_topology_init failed");
  hwloc_topology_set_io_types_filter(topology, HWLOC_TYPE_FILTER_KEEP_ALL);
  if (!xmlFile.empty() && hwloc_topology_set_xml(topology, xmlFile.c_str()) != 0) {
    int err = errno;
    hwloc_topology_destroy(topology);
    return WEFT_ERROR(weftInvalidArgument, "cannot read topology file %s: %s (is it an hwloc 2 XML export?)",
                      xmlFile.c_str(), strerror(err));
  }
  if (hwloc_topology_load(topology) != 0) {
    int err = errno;
    hwloc_topology_destroy(topology);
    return WEFT_ERROR(weftInvalidArgument, "hwloc could not load the topology%s%s: %s", xmlFile.empty() ? "" : " from ",
                      xmlFile.c_str(), strerror(err));
  }
  // What hwloc does not say, asked of this machine's drivers; never of a
  // file's machine, which may be another one.
  std::map<std::string, double> nicSpeeds;
  if (xmlFile.empty()) nicSpeeds = liveNicSpeeds();
  MachineTopology machine =
      Builder(topology, xmlFile.empty() ? &nicSpeeds : nullptr).build(xmlFile.empty() ? "live" : xmlFile);
  hwloc_topology_destroy(topology);
  bool hasNvLink = false;
  for (double gbps : machine.nvswitchGBps) hasNvLink |= gbps > 0;
  for (const auto& row : machine.nvlinkGBps)
    for (double gbps : row) hasNvLink |= gbps > 0;
  if (xmlFile.empty() && !machine.gpus.empty() && !hasNvLink) {
    Result<std::vector<NvmlGpuLinks>> links = queryNvmlLinks("libnvidia-ml.so.1");
    if (!links.isOk())
      WEFT_INFO(kLogGraph, "no NVLink information: %s", links.status().message().c_str());
    else
      WEFT_INFO(kLogGraph, "NVML: %d NVLink link(s) among %zu GPU(s)", applyNvmlLinks(links.value(), &machine),
                links.value().size());
  }
  return machine;
}

ProcessTopology processTopology() {
  static std::mutex mutex;
  static std::map<std::string, ProcessTopology> known;
  std::string file = envString(EnvParam::TopoFile);
  std::lock_guard<std::mutex> lock(mutex);
  auto it = known.find(file);
  if (it != known.end()) return it->second;
  ProcessTopology loaded;
  loaded.file = file;
  Result<MachineTopology> topo = discoverTopology(file);
  if (topo.isOk()) {
    loaded.topo = std::make_shared<const MachineTopology>(topo.take());
    if (envIsSet(EnvParam::TopoDumpFile)) {
      Status written = writeTopologyXml(*loaded.topo, envString(EnvParam::TopoDumpFile));
      if (!written.isOk()) WEFT_WARN("WEFT_TOPO_DUMP_FILE: %s", written.message().c_str());
    }
  } else {
    loaded.problem = topo.status().message();
  }
  known[file] = loaded;
  return loaded;
}

namespace {
// Ancestors of a node, itself first.
std::vector<int> ancestry(const MachineTopology& topo, int node) {
  std::vector<int> chain;
  for (int n = node; n >= 0; n = topo.nodes[n].parent) chain.push_back(n);
  return chain;
}
}  // namespace

Path MachineTopology::path(int nodeA, int nodeB) const {
  Path path;
  if (nodeA == nodeB) {
    path.cls = PathClass::Same;
    return path;
  }
  auto ga = std::find(gpus.begin(), gpus.end(), nodeA);
  auto gb = std::find(gpus.begin(), gpus.end(), nodeB);
  if (ga != gpus.end() && gb != gpus.end() && !nvlinkGBps.empty()) {
    size_t i = ga - gpus.begin(), j = gb - gpus.begin();
    if (nvlinkGBps[i][j] > 0) return {PathClass::NvLink, nvlinkGBps[i][j]};
    if (nvswitchGBps[i] > 0 && nvswitchGBps[j] > 0)
      return {PathClass::NvSwitch, std::min(nvswitchGBps[i], nvswitchGBps[j])};
  }
  std::vector<int> up = ancestry(*this, nodeA), down = ancestry(*this, nodeB);
  int common = 0;
  for (int n : up)
    if (std::find(down.begin(), down.end(), n) != down.end()) {
      common = n;
      break;
    }
  // The slowest PCIe link on either side of the common ancestor.
  double bottleneck = 0;
  for (const auto* chain : {&up, &down})
    for (int n : *chain) {
      if (n == common) break;
      double link = nodes[n].linkGBps;
      if (link > 0 && (bottleneck == 0 || link < bottleneck)) bottleneck = link;
    }
  path.bottleneckGBps = bottleneck;
  TopoKind kind = nodes[common].kind;
  if (kind == TopoKind::PciSwitch || kind == TopoKind::Gpu || kind == TopoKind::Nic || kind == TopoKind::PciDevice)
    path.cls = PathClass::PciSwitch;
  else if (kind == TopoKind::HostBridge || nodes[nodeA].package == nodes[nodeB].package)
    path.cls = PathClass::HostBridge;
  else
    path.cls = PathClass::CrossSocket;
  return path;
}

int MachineTopology::gpuByBusId(const std::string& busId) const {
  unsigned domain = 0, bus = 0, device = 0, function = 0;
  if (sscanf(busId.c_str(), "%x:%x:%x.%x", &domain, &bus, &device, &function) != 4) return -1;
  char canonical[32];
  snprintf(canonical, sizeof(canonical), "%04x:%02x:%02x.%x", domain & 0xffff, bus, device, function);
  for (int gpu : gpus)
    if (nodes[gpu].busId == canonical) return gpu;
  return -1;
}

double MachineTopology::fastestNicGBps() const {
  double best = 0;
  for (int nic : nics) best = std::max(best, nodes[nic].nicGBps);
  return best;
}

std::string MachineTopology::describe() const {
  std::string out;
  std::vector<std::pair<int, int>> stack{{0, 0}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    const TopoNode& n = nodes[node];
    out += std::string(static_cast<size_t>(depth) * 2, ' ') + n.name;
    if (!n.busId.empty()) out += " " + n.busId;
    if (n.linkGBps > 0) out += format(" (%.1f GB/s link)", n.linkGBps);
    if (n.nicGBps > 0) out += format(" (port %.1f GB/s)", n.nicGBps);
    if (!n.detail.empty()) out += " " + n.detail;
    out += "\n";
    for (auto it = n.children.rbegin(); it != n.children.rend(); ++it) stack.push_back({*it, depth + 1});
  }
  return out;
}

}  // namespace weft
