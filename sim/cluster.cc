#include "sim/cluster.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "algorithms/cost_model.h"
#include "core/logging.h"
#include "topology/machine.h"
#include "topology/topology_xml.h"

namespace weft::sim {
namespace {

Cluster host2core() {
  Cluster c;
  c.name = "host-2core";
  c.nodes = 1;
  c.ranksPerNode = 2;
  Result<CostConstants> loaded = loadCostConstants();
  CostConstants k = loaded.isOk() ? loaded.value() : CostConstants{};
  c.machine.intraNode = {k.hopMicros, k.copyGBps};
  c.machine.network = {k.netMicros, k.netGBps};
  c.machine.copyGBps = k.copyGBps;
  c.machine.reduceGBps = k.reduceGBps;
  c.machine.stepMicros = k.stepMicros;
  c.machine.nodeMemoryGBps = k.nodeCopyGBps;
  c.machine.coresPerNode = 2;
  c.machine.switchMicros = k.switchMicros;
  return c;
}

// H100 SXM on NVSwitch: each GPU's 18 NVLink 4 links signal 450 GB/s each
// way, of which about 390 GB/s carries payload (NVIDIA/nccl issue #1264
// measured 783 GB/s both ways between two H100 SXM); a switch port per GPU
// each way. A channel is a thread block with copy and reduce rates of its
// own (an SM streams some 60 GB/s); NCCL's rings use 16-32 of them, so 16
// here. A hand-off between GPUs (a flag written and seen over NVLink)
// costs about a microsecond, a step's bookkeeping a quarter of one.
Cluster dgxH100() {
  Cluster c;
  c.name = "dgx-h100";
  c.nodes = 1;
  c.ranksPerNode = 8;
  c.channels = 16;
  c.machine.intraNode = {1.0, 390.0};
  c.machine.intraSwitched = true;
  // 8 ConnectX-7 NICs at 400 Gbit/s, one per GPU (rails): 50 GB/s each way.
  c.machine.network = {5.0, 50.0};
  c.machine.nicsPerNode = 8;
  c.machine.enginePerChannel = true;
  c.machine.copyGBps = 60.0;
  c.machine.reduceGBps = 45.0;
  c.machine.stepMicros = 0.25;
  c.machine.slotBytes = 512 * 1024;
  c.machine.nSlots = 8;
  return c;
}

// Such nodes on a rail-optimised fat tree: a leaf switch per rail for every
// 32 nodes, non-blocking (oversubscription 1) unless the spec says otherwise.
Cluster dgxH100Pod() {
  Cluster c = dgxH100();
  c.name = "dgx-h100-pod";
  c.nodes = 2;
  c.machine.nodesPerLeaf = 32;
  return c;
}

// The multi-site test hosts: network namespaces of one rank each, a veth
// pair between two of a site (10 Gbit/s, as shaped), and from each node to
// the other site a link of its own of 1 Gbit/s and 10 ms round trip (netns.sh
// wan shapes every node's traffic to the far site). The ranks' rates are
// host-2core's.
Cluster sites() {
  Cluster c = host2core();
  c.name = "sites";
  c.nodes = 4;
  c.ranksPerNode = 1;
  c.sites = 2;
  c.machine.network = {50.0, 1.25};
  c.machine.wan = {5000.0, 0.125};
  c.machine.wanPerNode = true;
  c.machine.slotBytes = 2 << 20;  // WEFT_SITE_BUFFSIZE: what weft uses across sites
  return c;
}

Status readLink(const nlohmann::json& j, const char* field, LinkModel* link) {
  if (!j.contains(field)) return Status::ok();
  const nlohmann::json& l = j.at(field);
  if (!l.is_object()) return WEFT_ERROR(weftInvalidArgument, "cluster spec: %s must be an object", field);
  if (l.contains("latencyUs")) link->latencyMicros = l.at("latencyUs").get<double>();
  if (l.contains("gbps")) link->gbps = l.at("gbps").get<double>();
  if (link->latencyMicros < 0 || link->gbps <= 0)
    return WEFT_ERROR(weftInvalidArgument, "cluster spec: %s needs latencyUs >= 0 and gbps > 0", field);
  return Status::ok();
}

}  // namespace

Status applyNodeTopology(const std::string& path, Cluster* c) {
  Result<MachineTopology> read = isWeftTopologyXml(path) ? readTopologyXml(path) : discoverTopology(path);
  if (!read.isOk())
    return WEFT_ERROR(weftInvalidArgument, "nodeTopology %s: %s", path.c_str(), read.status().message().c_str());
  const MachineTopology& topo = read.value();
  MachineModel& m = c->machine;
  int gpus = static_cast<int>(topo.gpus.size());
  if (gpus > 0) {
    // A rank per GPU, a thread block per channel.
    c->ranksPerNode = gpus;
    m.enginePerChannel = true;
    bool switched = gpus > 1;
    double slowest = 0;
    m.pairGBps.assign(static_cast<size_t>(gpus) * gpus, 0.0);
    for (int i = 0; i < gpus; ++i)
      for (int j = 0; j < gpus; ++j) {
        if (i == j) continue;
        Path p = topo.path(topo.gpus[static_cast<size_t>(i)], topo.gpus[static_cast<size_t>(j)]);
        switched = switched && p.cls == PathClass::NvSwitch;
        m.pairGBps[static_cast<size_t>(i) * gpus + j] = p.bottleneckGBps;
        if (p.bottleneckGBps > 0) slowest = slowest > 0 ? std::min(slowest, p.bottleneckGBps) : p.bottleneckGBps;
      }
    if (switched) {
      // Every pair through NVSwitches: a port per GPU at its NVSwitch rate.
      m.intraSwitched = true;
      m.pairGBps.clear();
      if (slowest > 0) m.intraNode.gbps = slowest;
    }
  }
  if (!topo.nics.empty()) m.nicsPerNode = static_cast<int>(topo.nics.size());
  if (topo.fastestNicGBps() > 0) m.network.gbps = topo.fastestNicGBps();
  return Status::ok();
}

std::vector<std::string> clusterPresets() { return {"host-2core", "dgx-h100", "dgx-h100-pod", "sites"}; }

Result<Cluster> presetCluster(const std::string& name) {
  Cluster c;
  if (name == "host-2core")
    c = host2core();
  else if (name == "dgx-h100")
    c = dgxH100();
  else if (name == "dgx-h100-pod")
    c = dgxH100Pod();
  else if (name == "sites")
    c = sites();
  else
    return WEFT_ERROR(weftInvalidArgument, "no cluster preset %s; presets: host-2core, dgx-h100, dgx-h100-pod, sites",
                      name.c_str());
  layOut(&c);
  return c;
}

void layOut(Cluster* cluster) {
  MachineModel& m = cluster->machine;
  m.nranks = cluster->nodes * cluster->ranksPerNode;
  m.nodeOfRank.clear();
  for (int r = 0; r < m.nranks; ++r) m.nodeOfRank.push_back(r / cluster->ranksPerNode);
  m.siteOfNode.clear();
  if (cluster->sites > 1) {
    int perSite = (cluster->nodes + cluster->sites - 1) / cluster->sites;
    for (int k = 0; k < cluster->nodes; ++k) m.siteOfNode.push_back(k / perSite);
  }
}

Result<Cluster> parseClusterSpec(const std::string& text, const std::string& baseDir) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return WEFT_ERROR(weftInvalidArgument, "cluster spec: not a JSON object");
  try {
    if (!j.contains("version") || j.at("version").get<int>() != 1)
      return WEFT_ERROR(weftInvalidArgument, "cluster spec: \"version\": 1 is required (the only format so far)");
    for (const auto& [key, value] : j.items()) {
      (void)value;
      static const char* known[] = {"version",   "preset",  "name",        "nodes",    "ranksPerNode",
                                    "intraNode", "network", "nicsPerNode", "fabric",   "sites",
                                    "node",      "rank",    "fifo",        "channels", "nodeTopology"};
      bool ok = false;
      for (const char* k : known) ok = ok || key == k;
      if (!ok) return WEFT_ERROR(weftInvalidArgument, "cluster spec: unknown field \"%s\"", key.c_str());
    }
    Cluster c;
    c.name = "spec";
    if (j.contains("preset")) {
      Result<Cluster> base = presetCluster(j.at("preset").get<std::string>());
      if (!base.isOk()) return base.status();
      c = base.value();
    }
    if (j.contains("name")) c.name = j.at("name").get<std::string>();
    if (j.contains("nodeTopology")) {
      std::string path = j.at("nodeTopology").get<std::string>();
      if (!path.empty() && path[0] != '/' && !baseDir.empty()) path = baseDir + "/" + path;
      WEFT_CHECK(applyNodeTopology(path, &c));
    }
    if (j.contains("nodes")) c.nodes = j.at("nodes").get<int>();
    if (j.contains("ranksPerNode")) c.ranksPerNode = j.at("ranksPerNode").get<int>();
    if (c.nodes < 1 || c.ranksPerNode < 1)
      return WEFT_ERROR(weftInvalidArgument, "cluster spec: nodes and ranksPerNode must be at least 1");
    WEFT_CHECK(readLink(j, "intraNode", &c.machine.intraNode));
    if (j.contains("intraNode") && j.at("intraNode").contains("switched"))
      c.machine.intraSwitched = j.at("intraNode").at("switched").get<bool>();
    WEFT_CHECK(readLink(j, "network", &c.machine.network));
    if (j.contains("nicsPerNode")) c.machine.nicsPerNode = j.at("nicsPerNode").get<int>();
    if (j.contains("channels")) c.channels = j.at("channels").get<int>();
    if (j.contains("fabric")) {
      const nlohmann::json& f = j.at("fabric");
      if (f.contains("nodesPerLeaf")) c.machine.nodesPerLeaf = f.at("nodesPerLeaf").get<int>();
      if (f.contains("oversubscription")) c.machine.oversubscription = f.at("oversubscription").get<double>();
    }
    if (j.contains("sites")) {
      const nlohmann::json& s = j.at("sites");
      if (!s.is_object()) return WEFT_ERROR(weftInvalidArgument, "cluster spec: sites must be an object");
      if (s.contains("count")) c.sites = s.at("count").get<int>();
      WEFT_CHECK(readLink(s, "wan", &c.machine.wan));
      if (s.contains("wan") && s.at("wan").contains("perNode"))
        c.machine.wanPerNode = s.at("wan").at("perNode").get<bool>();
    }
    if (c.machine.nicsPerNode < 1 || c.machine.nodesPerLeaf < 0 || c.machine.oversubscription < 1 || c.sites < 1 ||
        c.channels < 0)
      return WEFT_ERROR(weftInvalidArgument,
                        "cluster spec: nicsPerNode and sites.count must be at least 1, fabric.nodesPerLeaf at "
                        "least 0, fabric.oversubscription at least 1, channels at least 0");
    if (c.nodes % c.sites != 0)
      return WEFT_ERROR(weftInvalidArgument, "cluster spec: %d nodes do not split into %d equal sites", c.nodes,
                        c.sites);
    if (j.contains("node")) {
      const nlohmann::json& nd = j.at("node");
      if (nd.contains("memoryGBps")) c.machine.nodeMemoryGBps = nd.at("memoryGBps").get<double>();
      if (nd.contains("cores")) c.machine.coresPerNode = nd.at("cores").get<int>();
      if (c.machine.nodeMemoryGBps < 0 || c.machine.coresPerNode < 0)
        return WEFT_ERROR(weftInvalidArgument, "cluster spec: node.memoryGBps and node.cores must be at least 0");
    }
    if (j.contains("rank")) {
      const nlohmann::json& r = j.at("rank");
      if (r.contains("switchUs")) c.machine.switchMicros = r.at("switchUs").get<double>();
      if (r.contains("copyGBps")) c.machine.copyGBps = r.at("copyGBps").get<double>();
      if (r.contains("reduceGBps")) c.machine.reduceGBps = r.at("reduceGBps").get<double>();
      if (r.contains("stepUs")) c.machine.stepMicros = r.at("stepUs").get<double>();
      if (r.contains("enginePerChannel")) c.machine.enginePerChannel = r.at("enginePerChannel").get<bool>();
    }
    if (j.contains("fifo")) {
      const nlohmann::json& f = j.at("fifo");
      if (f.contains("slotBytes")) c.machine.slotBytes = f.at("slotBytes").get<size_t>();
      if (f.contains("slots")) c.machine.nSlots = f.at("slots").get<int>();
    }
    if (c.machine.copyGBps <= 0 || c.machine.reduceGBps <= 0 || c.machine.stepMicros < 0 || c.machine.slotBytes < 64 ||
        c.machine.nSlots < 1)
      return WEFT_ERROR(weftInvalidArgument,
                        "cluster spec: rank rates must be above 0, stepUs >= 0, slotBytes >= 64, slots >= 1");
    layOut(&c);
    return c;
  } catch (const nlohmann::json::exception& e) {
    return WEFT_ERROR(weftInvalidArgument, "cluster spec: %s", e.what());
  }
}

std::string calibratedSpec(const CostConstants& k, int cores, const std::string& name) {
  nlohmann::ordered_json j;
  j["version"] = 1;
  j["name"] = name;
  j["nodes"] = 1;
  j["ranksPerNode"] = 2;
  j["intraNode"] = {{"latencyUs", k.hopMicros}, {"gbps", k.copyGBps}};
  j["network"] = {{"latencyUs", k.netMicros}, {"gbps", k.netGBps}};
  j["node"] = {{"memoryGBps", k.nodeCopyGBps}, {"cores", cores}};
  j["rank"] = {
      {"copyGBps", k.copyGBps}, {"reduceGBps", k.reduceGBps}, {"stepUs", k.stepMicros}, {"switchUs", k.switchMicros}};
  return j.dump(2) + "\n";
}

Result<Cluster> loadCluster(const std::string& nameOrPath) {
  for (const std::string& preset : clusterPresets())
    if (preset == nameOrPath) return presetCluster(nameOrPath);
  std::ifstream file(nameOrPath);
  if (!file)
    return WEFT_ERROR(weftInvalidArgument,
                      "--cluster %s: neither a preset (host-2core, dgx-h100, dgx-h100-pod, sites) nor "
                      "a readable spec file",
                      nameOrPath.c_str());
  std::stringstream text;
  text << file.rdbuf();
  size_t slash = nameOrPath.rfind('/');
  Result<Cluster> c = parseClusterSpec(text.str(), slash == std::string::npos ? "." : nameOrPath.substr(0, slash));
  if (!c.isOk()) return Status(c.status().code(), nameOrPath + ": " + c.status().message());
  return c;
}

}  // namespace weft::sim
