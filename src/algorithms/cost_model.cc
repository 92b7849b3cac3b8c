#include "algorithms/cost_model.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/env.h"

namespace weft {
namespace {

struct ConstantField {
  const char* name;
  double CostConstants::*field;
  const char* meaning;
};

const ConstantField kFields[] = {
    {"call_us", &CostConstants::callMicros, "a call's fixed cost: posting, the worker taking it, completion"},
    {"hop_us", &CostConstants::hopMicros, "one hand-off between two ranks of a node on cores of their own"},
    {"switch_us", &CostConstants::switchMicros, "one hand-off when ranks outnumber cores (the peer is scheduled)"},
    {"step_us", &CostConstants::stepMicros, "one step that does not wait"},
    {"copy_gbps", &CostConstants::copyGBps, "one core copying through a FIFO slot"},
    {"reduce_gbps", &CostConstants::reduceGBps, "one core reducing floats through a FIFO slot (bytes written)"},
    {"node_copy_gbps", &CostConstants::nodeCopyGBps, "every core of the node copying at once, in total"},
    {"net_us", &CostConstants::netMicros, "one hand-off over the network"},
    {"net_gbps", &CostConstants::netGBps, "a node's network bandwidth per direction when no NIC speed is known"},
    {"wan_us", &CostConstants::wanMicros, "one hand-off across a site link (its one-way latency)"},
    {"wan_gbps", &CostConstants::wanGBps, "a node's share of a site link per direction"},
    {"ll_hop_us", &CostConstants::llHopMicros, "devices: one hand-off of the LL protocol (flag and data in one store)"},
    {"ll_copy_gbps", &CostConstants::llCopyGBps, "devices: one block copying with the LL protocol (half flags)"},
};

}  // namespace

std::string formatCostConstants(const CostConstants& constants) {
  std::string text;
  for (const ConstantField& f : kFields) {
    char line[200];
    snprintf(line, sizeof(line), "%-15s = %.4g  # %s\n", f.name, constants.*f.field, f.meaning);
    text += line;
  }
  return text;
}

Status parseCostConstants(const std::string& text, CostConstants* constants) {
  std::istringstream in(text);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    std::string body = line.substr(0, line.find('#'));
    size_t first = body.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    size_t eq = body.find('=');
    if (eq == std::string::npos)
      return WEFT_ERROR(weftInvalidArgument, "line %d '%s': expected 'name = value'", number, line.c_str());
    std::string name = body.substr(first, eq - first);
    name.erase(name.find_last_not_of(" \t") + 1);
    std::string value = body.substr(eq + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t\r") + 1);
    const ConstantField* field = nullptr;
    for (const ConstantField& f : kFields)
      if (name == f.name) field = &f;
    if (field == nullptr) {
      std::string names;
      for (const ConstantField& f : kFields) names += (names.empty() ? "" : ", ") + std::string(f.name);
      return WEFT_ERROR(weftInvalidArgument, "line %d: unknown constant '%s'; expected one of %s", number, name.c_str(),
                        names.c_str());
    }
    char* end = nullptr;
    errno = 0;
    double parsed = strtod(value.c_str(), &end);
    while (end != nullptr && (*end == ' ' || *end == '\t' || *end == '\r')) ++end;
    if (errno != 0 || end == value.c_str() || *end != '\0' || !std::isfinite(parsed) || parsed <= 0)
      return WEFT_ERROR(weftInvalidArgument, "line %d: %s = '%s' is not a positive number", number, name.c_str(),
                        value.c_str());
    constants->*field->field = parsed;
  }
  return Status::ok();
}

const char* costTargetName(CostTarget target) {
  switch (target) {
    case CostTarget::Host: return "host";
    case CostTarget::EmulatedDevice: return "emulated device";
    case CostTarget::CudaDevice: return "CUDA device";
  }
  return "?";
}

const char* protocolName(Protocol protocol) { return protocol == Protocol::LowLatency ? "LL" : "simple"; }

CostConstants defaultCostConstants(CostTarget target) {
  CostConstants c;
  switch (target) {
    case CostTarget::Host: break;
    case CostTarget::EmulatedDevice:
      // weft-info --calibrate --device emulated, three runs on a 2-core AMD
      // EPYC VM: a launch starts host threads (a 1-rank 8 B call 37-44 us);
      // a hand-off is host threads spinning on a word, alike for both
      // protocols within the noise (0.6-7 us); a 2-rank all-gather copies at
      // 6-8 GB/s by the simple protocol, 2-4 GB/s by LL (a flag per word).
      c.callMicros = 40.0;
      c.hopMicros = 5.0;
      c.llHopMicros = 5.0;
      c.copyGBps = 7.5;
      c.reduceGBps = 4.0;
      c.llCopyGBps = 3.0;
      break;
    case CostTarget::CudaDevice:
      // Estimates for one H100-class GPU, not yet measured (no GPU has run
      // weft-info --calibrate --device): a kernel launch and its completion
      // seen by the host; a simple slot's hand-off (payload, system-scope
      // fence, tail store, the peer polling it) against LL's single
      // 8-byte store the peer polls; one block's copy rate, halved by LL's
      // flags; every rank on the GPU sharing its memory.
      c.callMicros = 5.0;
      c.hopMicros = 2.0;
      c.switchMicros = 2.0;  // blocks of ranks sharing a GPU run side by side
      c.stepMicros = 0.5;
      c.copyGBps = 150.0;
      c.reduceGBps = 100.0;
      c.nodeCopyGBps = 2000.0;
      c.llHopMicros = 0.8;
      c.llCopyGBps = 40.0;
      break;
  }
  return c;
}

Result<CostConstants> loadCostConstants(CostTarget target) {
  CostConstants constants = defaultCostConstants(target);
  EnvParam param = target == CostTarget::Host ? EnvParam::TuneFile : EnvParam::DeviceTuneFile;
  const char* variable = target == CostTarget::Host ? "WEFT_TUNE_FILE" : "WEFT_DEVICE_TUNE_FILE";
  std::string file = envString(param);
  if (file.empty()) return constants;
  std::ifstream in(file);
  if (!in) return WEFT_ERROR(weftInvalidArgument, "%s=%s: %s", variable, file.c_str(), strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  Status parsed = parseCostConstants(text.str(), &constants);
  if (!parsed.isOk())
    return WEFT_ERROR(weftInvalidArgument, "%s=%s: %s", variable, file.c_str(), parsed.message().c_str());
  return constants;
}

double costMicros(const CostQuery& query, const CostTerms& terms) {
  const CostShape& shape = query.shape;
  const CostConstants& k = query.constants;
  int perNode = std::max(1, shape.ranksPerNode), cores = std::max(1, shape.coresPerNode);
  bool crowded = perNode > cores;
  // Oversubscribed cores: each rank has its share of a core, hand-offs wait
  // for the scheduler, and a step waits its turn.
  double share = crowded ? static_cast<double>(cores) / perNode : 1.0;
  bool ll = query.protocol == Protocol::LowLatency;
  double hop = crowded ? k.switchMicros : ll ? k.llHopMicros : k.hopMicros;
  double piece = terms.chained ? hop : k.stepMicros;
  // Bytes per microsecond: a core's rate, or the node's memory shared out
  // (LL: the flags in every word slow a block's copies and reductions alike).
  double copyRate = std::min(k.copyGBps * share, k.nodeCopyGBps / perNode) * 1e3;
  if (ll) copyRate *= std::min(1.0, k.llCopyGBps / k.copyGBps);
  double reduceRate = copyRate * k.reduceGBps / k.copyGBps;
  double netRate = k.netGBps * 1e3;
  double local = terms.copyBytes / copyRate + terms.reduceBytes / reduceRate;
  double network = shape.nNodes > 1 ? terms.netBytes / netRate : 0.0;
  double wan = shape.nSites > 1 ? terms.wanBytes / (k.wanGBps * 1e3) : 0.0;
  return k.callMicros + terms.hops * hop + terms.netHops * k.netMicros + terms.wanHops * k.wanMicros +
         terms.steps * k.stepMicros + terms.pieces * piece + std::max({local, network, wan});
}

namespace cost {

double pieces(const CostQuery& query, double steps, double stepBytes) {
  double channels = std::max(1, query.channels);
  double perChannel = std::ceil(stepBytes / channels / static_cast<double>(query.shape.slotBytes));
  // A step's first slot is its hop (or, for an independent step, the call's
  // latency): the pieces are the slots after it, which pipeline.
  return steps * (channels * std::max(1.0, perChannel) - 1);
}

CostTerms ring(const CostQuery& query) {
  double n = query.shape.nranks, S = static_cast<double>(query.bytes);
  bool network = query.shape.nNodes > 1;
  CostTerms t;
  t.chained = true;
  if (query.shape.nranks == 1) {
    t.copyBytes = S;
    return t;
  }
  double rounds = 0;
  switch (query.collective) {
    case Collective::AllReduce:  // reduce-scatter, then all-gather
      // One block copied in, n-1 reduced (the last into the output), n-1
      // copied out of slots into the output, n-2 of them also into the next
      // slot (a RecvSend writes both, as weft-sim counts it).
      rounds = 2 * (n - 1);
      t.reduceBytes = (n - 1) / n * S;
      t.copyBytes = S + (n - 2) / n * S;
      t.netBytes = 2 * (n - 1) / n * S;
      t.pieces = pieces(query, rounds, S / n);
      break;
    case Collective::ReduceScatter:
      rounds = n - 1;
      t.reduceBytes = (n - 1) / n * S;
      t.copyBytes = S / n;
      t.netBytes = (n - 1) / n * S;
      t.pieces = pieces(query, rounds, S / n);
      break;
    case Collective::AllGather:  // the own block in and to the output, n-1 out of slots, n-2 on
      rounds = n - 1;
      t.copyBytes = (n + 1) / n * S + (n - 2) / n * S;
      t.netBytes = (n - 1) / n * S;
      t.pieces = pieces(query, rounds, S / n);
      break;
    case Collective::Broadcast:  // a chain from the root: every slot received into the output and passed on
      rounds = n - 1;
      t.copyBytes = S;
      t.netBytes = S;
      t.pieces = pieces(query, 1, S);
      break;
    case Collective::Reduce:  // a chain to the root: every slot reduced and passed on
      rounds = n - 1;
      t.reduceBytes = S;
      t.copyBytes = S;
      t.netBytes = S;
      t.pieces = pieces(query, 1, S);
      break;
    default: break;
  }
  (network ? t.netHops : t.hops) = rounds;
  if (spansSites(query)) {
    // Sites hold consecutive stretches of the ring: a chain crosses each
    // site link once, the rings' dependency chain (around the ring) s of
    // every n hops. Channel pairs run the ring both ways, leaving a site
    // from its last node and from its first, so with two or more channels
    // (and nodes per site) two nodes' site links share the bytes.
    double s = query.shape.nSites;
    bool chain = query.collective == Collective::Broadcast || query.collective == Collective::Reduce;
    t.wanHops = std::min(rounds, chain ? s - 1 : rounds * s / n);
    (network ? t.netHops : t.hops) = rounds - t.wanHops;
    bool bothWays = query.channels >= 2 && nodesPerSite(query.shape) >= 2;
    t.wanBytes = t.netBytes / (bothWays ? 2 : 1);
  }
  return t;
}

int nodesPerSite(const CostShape& shape) { return std::max(1, shape.nNodes / std::max(1, shape.nSites)); }

int treeDepth(int n) {
  int depth = 0;
  while ((2 << depth) <= n) ++depth;
  return std::max(depth, n > 1 ? 1 : 0);
}

}  // namespace cost
}  // namespace weft
