#include "sim/cluster.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "algorithms/cost_model.h"
#include "core/logging.h"

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
  return c;
}

// H100 SXM: 18 NVLink 4 links, 450 GB/s each way through the NVSwitches;
// HBM3 at about 3.35 TB/s (a copy reads and writes); a few microseconds a
// hand-off between GPUs.
Cluster dgxH100() {
  Cluster c;
  c.name = "dgx-h100";
  c.nodes = 1;
  c.ranksPerNode = 8;
  c.machine.intraNode = {2.0, 450.0};
  c.machine.network = {5.0, 400.0};  // 8 x 400 Gbit/s NICs, a node's total each way
  // Per channel (a thread block of its own): NCCL's rings use 16-32 of them.
  c.machine.enginePerChannel = true;
  c.machine.copyGBps = 200.0;
  c.machine.reduceGBps = 150.0;
  c.machine.stepMicros = 0.5;
  c.machine.slotBytes = 512 * 1024;
  c.machine.nSlots = 8;
  return c;
}

Cluster dgxH100Pod() {
  Cluster c = dgxH100();
  c.name = "dgx-h100-pod";
  c.nodes = 2;
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

std::vector<std::string> clusterPresets() { return {"host-2core", "dgx-h100", "dgx-h100-pod"}; }

Result<Cluster> presetCluster(const std::string& name) {
  Cluster c;
  if (name == "host-2core")
    c = host2core();
  else if (name == "dgx-h100")
    c = dgxH100();
  else if (name == "dgx-h100-pod")
    c = dgxH100Pod();
  else
    return WEFT_ERROR(weftInvalidArgument, "no cluster preset %s; presets: host-2core, dgx-h100, dgx-h100-pod",
                      name.c_str());
  layOut(&c);
  return c;
}

void layOut(Cluster* cluster) {
  cluster->machine.nranks = cluster->nodes * cluster->ranksPerNode;
  cluster->machine.nodeOfRank.clear();
  for (int r = 0; r < cluster->machine.nranks; ++r) cluster->machine.nodeOfRank.push_back(r / cluster->ranksPerNode);
}

Result<Cluster> parseClusterSpec(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return WEFT_ERROR(weftInvalidArgument, "cluster spec: not a JSON object");
  try {
    if (!j.contains("version") || j.at("version").get<int>() != 1)
      return WEFT_ERROR(weftInvalidArgument, "cluster spec: \"version\": 1 is required (the only format so far)");
    for (const auto& [key, value] : j.items()) {
      (void)value;
      static const char* known[] = {"version",   "preset",  "name", "nodes", "ranksPerNode",
                                    "intraNode", "network", "rank", "fifo"};
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
    if (j.contains("nodes")) c.nodes = j.at("nodes").get<int>();
    if (j.contains("ranksPerNode")) c.ranksPerNode = j.at("ranksPerNode").get<int>();
    if (c.nodes < 1 || c.ranksPerNode < 1)
      return WEFT_ERROR(weftInvalidArgument, "cluster spec: nodes and ranksPerNode must be at least 1");
    WEFT_CHECK(readLink(j, "intraNode", &c.machine.intraNode));
    WEFT_CHECK(readLink(j, "network", &c.machine.network));
    if (j.contains("rank")) {
      const nlohmann::json& r = j.at("rank");
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

Result<Cluster> loadCluster(const std::string& nameOrPath) {
  for (const std::string& preset : clusterPresets())
    if (preset == nameOrPath) return presetCluster(nameOrPath);
  std::ifstream file(nameOrPath);
  if (!file)
    return WEFT_ERROR(weftInvalidArgument,
                      "--cluster %s: neither a preset (host-2core, dgx-h100, dgx-h100-pod) nor "
                      "a readable spec file",
                      nameOrPath.c_str());
  std::stringstream text;
  text << file.rdbuf();
  Result<Cluster> c = parseClusterSpec(text.str());
  if (!c.isOk()) return Status(c.status().code(), nameOrPath + ": " + c.status().message());
  return c;
}

}  // namespace weft::sim
