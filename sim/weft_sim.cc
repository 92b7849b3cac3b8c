// weft-sim: what a collective costs on a modelled machine, from weft's own
// plans (sim/replay.h).
//   weft-sim kv [--model NAME[,NAME...]] [--tokens T[,T...]] [--requests R[,R...]]
//               [--link RATE[,RATE...]] [--latency-ms L] [--prefill-ms-per-layer P]
// prints KV-cache bytes and transfer times (sim/kv_cache.h); without
// options, the prefill/decode table for Llama 3 8B and 405B.
//   weft-sim calibrate [--tune FILE | --weft-info PATH] [--net-us U] [--net-gbps G] [--out SPEC.json]
// writes a cluster spec of one node of this host, measured by weft-info --calibrate.
//   weft-sim [--cluster PRESET|SPEC.json] [--nranks N] [--nodes M] [--coll NAME] [--bytes LO:HI:xF] [--algo NAME|auto]
//   [--channels C]
//            [--link-gbps G] [--link-us U] [--net-gbps G] [--net-us U] [--copy-gbps G] [--reduce-gbps G]
//            [--step-us U] [--slot BYTES] [--slots K] [--aggregate auto|on|off] [--trace FILE]
// prints per size the algorithm, the simulated time, algbw and busbw
// (nccl-tests' factors), and the busiest link with its utilisation. With
// --algo auto (the default) the tuner's choice for that machine shape runs.
#include <sched.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "algorithms/tuner.h"
#include "core/logging.h"
#include "core/types.h"
#include "sim/cluster.h"
#include "sim/kv_cache.h"
#include "sim/replay.h"

using namespace weft;

namespace {

int usage(const char* why) {
  if (why != nullptr) fprintf(stderr, "weft-sim: %s\n", why);
  fprintf(stderr,
          "usage: weft-sim [--cluster PRESET|SPEC.json] [--nranks N] [--nodes M] [--coll NAME]\n"
          "                [--bytes LO:HI:xF] [--algo NAME|auto]\n"
          "                [--channels C] [--link-gbps G] [--link-us U] [--net-gbps G] [--net-us U]\n"
          "                [--copy-gbps G] [--reduce-gbps G] [--step-us U] [--slot BYTES] [--slots K]\n"
          "                [--aggregate auto|on|off] [--trace FILE]\n"
          "  replays weft's plans for the collective on the modelled machine (ranks in M equal nodes;\n"
          "  links of a node and between nodes with latency and bandwidth; a core per rank) and prints\n"
          "  per size the simulated time, algbw, busbw and the busiest link; --trace writes the simulated\n"
          "  steps of one size as WEFT_TRACE_FILE does (%%r: the rank). Presets: host-2core (the tuner's\n"
          "  constants), dgx-h100, dgx-h100-pod (--nodes sets the nodes), sites; the options after it override\n"
          "  it. With --algo auto, every other algorithm is replayed too and the best named beside the\n"
          "  tuner's choice. --aggregate: replay one group of ranks when the plans repeat from group to\n"
          "  group (auto: when all the plans would be millions of steps)\n");
  return 2;
}

bool parseSize(const char* text, size_t* out) {
  char* end = nullptr;
  double value = strtod(text, &end);
  if (end == text || value < 0) return false;
  double scale = 1;
  if (*end == 'K' || *end == 'k') scale = 1024, ++end;
  if (*end == 'M' || *end == 'm') scale = 1024.0 * 1024, ++end;
  if (*end == 'G' || *end == 'g') scale = 1024.0 * 1024 * 1024, ++end;
  if (*end != '\0') return false;
  *out = static_cast<size_t>(value * scale);
  return true;
}

bool parseNumber(const char* text, double* out) {
  char* end = nullptr;
  *out = strtod(text, &end);
  return end != text && *end == '\0' && *out > 0;
}

double busFactor(Collective c, int n) {
  switch (c) {
    case Collective::AllReduce: return 2.0 * (n - 1) / n;
    case Collective::Broadcast:
    case Collective::Reduce: return 1.0;
    default: return static_cast<double>(n - 1) / n;
  }
}

std::string sizeText(size_t bytes) {
  if (bytes >= (1u << 30) && bytes % (1u << 30) == 0) return format("%zu GiB", bytes >> 30);
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return format("%zu MiB", bytes >> 20);
  if (bytes >= 1024 && bytes % 1024 == 0) return format("%zu KiB", bytes >> 10);
  return format("%zu B", bytes);
}

std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

int kvUsage(const char* why) {
  if (why != nullptr) fprintf(stderr, "weft-sim kv: %s\n", why);
  fprintf(stderr,
          "usage: weft-sim kv [--model NAME[,NAME...]] [--tokens T[,T...]] [--requests R[,R...]]\n"
          "                   [--link RATE[,RATE...]] [--latency-ms L] [--prefill-ms-per-layer P]\n"
          "  KV-cache bytes (2 x KV heads x head dim x 2 bytes per token and layer, FP16) and the time to\n"
          "  move them; tokens take K (1024) suffixes, rates Gbps (100Gbps, 400G, 1.6Tbps).\n"
          "  models: llama3-8b, llama3-70b, llama3-405b\n");
  return 2;
}

// weft-sim kv: every (model, tokens, requests) row, the bytes and the
// transfer time over each link.
int kvMain(int argc, char** argv) {
  std::vector<std::string> models = {"llama3-8b", "llama3-405b"};
  std::vector<double> tokens = {1024, 8192}, requests = {1, 100}, links = {100, 400, 800};
  double latencyMs = 0, prefillMs = 0;
  bool table = true;  // the default rows: 1K x 1, 8K x 1, 8K x 100
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return kvUsage(nullptr);
    if (i + 1 >= argc) return kvUsage(("missing the value of " + arg).c_str());
    std::string value = argv[++i];
    if (arg == "--model") {
      models = splitList(value);
      for (const std::string& m : models)
        if (!sim::findKvModel(m)) return kvUsage(("unknown model " + m).c_str());
    } else if (arg == "--tokens" || arg == "--requests") {
      std::vector<double> list;
      for (const std::string& item : splitList(value)) {
        size_t n = 0;
        if (!parseSize(item.c_str(), &n) || n == 0) return kvUsage(("bad value for " + arg + ": " + item).c_str());
        list.push_back(static_cast<double>(n));
      }
      (arg == "--tokens" ? tokens : requests) = list;
      table = false;
    } else if (arg == "--link") {
      links.clear();
      for (const std::string& item : splitList(value)) {
        std::optional<double> gbps = sim::parseLinkGbps(item);
        if (!gbps) return kvUsage(("bad link rate " + item).c_str());
        links.push_back(*gbps);
      }
    } else if (arg == "--latency-ms") {
      if (!parseNumber(value.c_str(), &latencyMs)) return kvUsage(("bad value for " + arg).c_str());
    } else if (arg == "--prefill-ms-per-layer") {
      if (!parseNumber(value.c_str(), &prefillMs)) return kvUsage(("bad value for " + arg).c_str());
    } else {
      return kvUsage(("unknown option " + arg).c_str());
    }
  }
  if (links.empty()) return kvUsage("no link rate");
  printf(
      "# KV cache, FP16: bytes per token and layer = 2 x KV heads x head dim x 2; GB = 1e9 bytes; tokens: K = 1024\n");
  printf("# transfer time = bytes x 8 / rate%s%s\n", latencyMs > 0 ? " + latency" : "",
         prefillMs > 0 ? "; pipelined: what is left after the prefill when each layer leaves as it is computed" : "");
  printf("%-12s %8s %9s %12s %10s", "model", "tokens", "requests", "bytes/token", "GB");
  for (double gbps : links) printf(" %11s", format("%gGbps s", gbps).c_str());
  if (prefillMs > 0)
    for (double gbps : links) printf(" %13s", format("%gG piped s", gbps).c_str());
  printf("\n");
  for (const std::string& name : models) {
    sim::KvModel model = *sim::findKvModel(name);
    for (double t : tokens)
      for (double r : requests) {
        if (table && t == 1024 && r != 1) continue;  // the table's rows: 1K x 1, 8K x 1, 8K x 100
        double bytes = sim::kvBytes(model, t, r);
        printf("%-12s %8.0f %9.0f %12.0f %10.3f", model.name.c_str(), t, r,
               sim::kvBytesPerTokenLayer(model) * model.layers, bytes / 1e9);
        for (double gbps : links) printf(" %11.3f", sim::transferSeconds(bytes, gbps, latencyMs / 1e3));
        if (prefillMs > 0)
          for (double gbps : links)
            printf(" %13.3f", sim::exposedSecondsPipelined(model, bytes, gbps, prefillMs / 1e3, latencyMs / 1e3));
        printf("\n");
      }
  }
  return 0;
}

int calibrateUsage(const char* why) {
  if (why != nullptr) fprintf(stderr, "weft-sim calibrate: %s\n", why);
  fprintf(stderr,
          "usage: weft-sim calibrate [--tune FILE | --weft-info PATH] [--net-us U] [--net-gbps G]\n"
          "                          [--name NAME] [--out SPEC.json]\n"
          "  measures this host with weft-info --calibrate (or reads the constants it wrote, --tune)\n"
          "  and writes a cluster spec of one node of it (standard output without --out); the network's\n"
          "  constants are given (--net-us: one hand-off, --net-gbps: a node's link each way) or the\n"
          "  tuner's defaults. Use it with --cluster SPEC.json --nranks N [--nodes M].\n");
  return 2;
}

// weft-info next to this program: the build tree (sim/ and src/) or an
// installed bin/.
std::string findWeftInfo() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string dir = self;
    dir = dir.substr(0, dir.rfind('/'));
    for (const std::string& candidate : {dir + "/weft-info", dir + "/../src/weft-info"})
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "weft-info";
}

int calibrateMain(int argc, char** argv) {
  std::string tune, weftInfo = findWeftInfo(), out, name = "calibrated";
  double netUs = 0, netGBps = 0;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return calibrateUsage(nullptr);
    if (i + 1 >= argc) return calibrateUsage(("missing the value of " + arg).c_str());
    std::string value = argv[++i];
    if (arg == "--tune") {
      tune = value;
    } else if (arg == "--weft-info") {
      weftInfo = value;
    } else if (arg == "--out") {
      out = value;
    } else if (arg == "--name") {
      name = value;
    } else if (arg == "--net-us") {
      if (!parseNumber(value.c_str(), &netUs)) return calibrateUsage(("bad value for " + arg).c_str());
    } else if (arg == "--net-gbps") {
      if (!parseNumber(value.c_str(), &netGBps)) return calibrateUsage(("bad value for " + arg).c_str());
    } else {
      return calibrateUsage(("unknown option " + arg).c_str());
    }
  }
  std::string measured;
  if (tune.empty()) {
    char path[] = "/tmp/weft-sim-calibrate.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return calibrateUsage("cannot make a temporary file");
    close(fd);
    tune = measured = path;
    pid_t pid = fork();
    if (pid == 0) {
      execlp(weftInfo.c_str(), weftInfo.c_str(), "--calibrate", "--out", path, static_cast<char*>(nullptr));
      fprintf(stderr, "weft-sim calibrate: cannot run %s: %s\n", weftInfo.c_str(), strerror(errno));
      _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      unlink(path);
      fprintf(stderr, "weft-sim calibrate: %s --calibrate failed\n", weftInfo.c_str());
      return 1;
    }
  }
  std::ifstream file(tune);
  std::stringstream text;
  text << file.rdbuf();
  if (!measured.empty()) unlink(measured.c_str());
  CostConstants constants;
  Status parsed =
      file ? parseCostConstants(text.str(), &constants) : Status(weftInvalidArgument, "cannot read " + tune);
  if (!parsed.isOk()) {
    fprintf(stderr, "weft-sim calibrate: %s\n", parsed.message().c_str());
    return 1;
  }
  if (netUs > 0) constants.netMicros = netUs;
  if (netGBps > 0) constants.netGBps = netGBps;
  cpu_set_t set;
  int cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  std::string spec = sim::calibratedSpec(constants, cores, name);
  if (out.empty()) {
    fputs(spec.c_str(), stdout);
    return 0;
  }
  std::ofstream written(out);
  written << spec;
  if (!written) {
    fprintf(stderr, "weft-sim calibrate: cannot write %s\n", out.c_str());
    return 1;
  }
  fprintf(stderr, "weft-sim calibrate: wrote %s\n", out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "kv") == 0) return kvMain(argc, argv);
  if (argc > 1 && strcmp(argv[1], "calibrate") == 0) return calibrateMain(argc, argv);
  int nranks = 2, nodes = 1, channels = 0;
  std::string coll = "allreduce", algo = "auto", trace;
  size_t lo = 8, hi = 64u << 20, factor = 4;
  sim::MachineModel machine;
  // --cluster first: the other options change what it says.
  int clusterRanksPerNode = 0, clusterSites = 1;
  bool ranksGiven = false;
  sim::Aggregation aggregation = sim::Aggregation::Auto;
  for (int i = 1; i + 1 < argc; ++i)
    if (strcmp(argv[i], "--cluster") == 0) {
      Result<sim::Cluster> cluster = sim::loadCluster(argv[i + 1]);
      if (!cluster.isOk()) {
        fprintf(stderr, "weft-sim: %s\n", cluster.status().message().c_str());
        return 2;
      }
      machine = cluster.value().machine;
      nodes = cluster.value().nodes;
      clusterRanksPerNode = cluster.value().ranksPerNode;
      clusterSites = cluster.value().sites;
      channels = cluster.value().channels;
      nranks = machine.nranks;
    }
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return usage(nullptr);
    if (i + 1 >= argc) return usage(("missing the value of " + arg).c_str());
    const char* value = argv[++i];
    double number = 0;
    bool ok = true;
    if (arg == "--cluster") {
      // read above
    } else if (arg == "--nranks") {
      ok = parseNumber(value, &number);
      nranks = static_cast<int>(number);
      ranksGiven = true;
    } else if (arg == "--nodes") {
      ok = parseNumber(value, &number);
      nodes = static_cast<int>(number);
    } else if (arg == "--channels") {
      ok = parseNumber(value, &number);
      channels = static_cast<int>(number);
    } else if (arg == "--coll") {
      coll = value;
    } else if (arg == "--algo") {
      algo = value;
    } else if (arg == "--trace") {
      trace = value;
    } else if (arg == "--aggregate") {
      std::string v = value;
      ok = v == "auto" || v == "on" || v == "off";
      aggregation = v == "on"    ? sim::Aggregation::Always
                    : v == "off" ? sim::Aggregation::Never
                                 : sim::Aggregation::Auto;
    } else if (arg == "--bytes") {
      std::string text = value;
      size_t a = text.find(':'), b = text.rfind(":x");
      if (a == std::string::npos || b == std::string::npos || b <= a) return usage("--bytes takes LO:HI:xF");
      ok = parseSize(text.substr(0, a).c_str(), &lo) && parseSize(text.substr(a + 1, b - a - 1).c_str(), &hi) &&
           parseSize(text.substr(b + 2).c_str(), &factor) && factor >= 2 && lo > 0 && hi >= lo;
    } else if (arg == "--link-gbps") {
      ok = parseNumber(value, &machine.intraNode.gbps);
    } else if (arg == "--link-us") {
      ok = parseNumber(value, &machine.intraNode.latencyMicros);
    } else if (arg == "--net-gbps") {
      ok = parseNumber(value, &machine.network.gbps);
    } else if (arg == "--net-us") {
      ok = parseNumber(value, &machine.network.latencyMicros);
    } else if (arg == "--copy-gbps") {
      ok = parseNumber(value, &machine.copyGBps);
    } else if (arg == "--reduce-gbps") {
      ok = parseNumber(value, &machine.reduceGBps);
    } else if (arg == "--step-us") {
      ok = parseNumber(value, &machine.stepMicros);
    } else if (arg == "--slot") {
      ok = parseSize(value, &machine.slotBytes) && machine.slotBytes >= 4096 && machine.slotBytes % 64 == 0;
    } else if (arg == "--slots") {
      ok = parseNumber(value, &number) && number >= 2;
      machine.nSlots = static_cast<int>(number);
    } else {
      return usage(("unknown option " + arg).c_str());
    }
    if (!ok) return usage(("bad value for " + arg + ": " + value).c_str());
  }
  if (clusterRanksPerNode > 0 && !ranksGiven) nranks = nodes * clusterRanksPerNode;
  if (nranks < 1 || nodes < 1 || nranks % nodes != 0) return usage("--nranks must be a multiple of --nodes");
  if (!trace.empty() && lo != hi) return usage("--trace needs one size (--bytes S:S:x2)");
  const Collective* found = findPlannedCollective(coll);
  if (found == nullptr) return usage(("--coll " + coll + ": expected one of " + plannedCollectiveNames()).c_str());
  Collective collective = *found;
  const AlgorithmEntry* forced = nullptr;
  if (strcasecmp(algo.c_str(), "auto") != 0) {
    forced = findAlgorithm(algo);
    if (forced == nullptr) return usage(("--algo " + algo + ": expected auto or one of " + algorithmNames()).c_str());
    if (!forced->supports(collective))
      return usage(format("--algo %s does not build %s", forced->name, collectiveName(collective)).c_str());
  }
  if (nodes % clusterSites != 0) return usage("--nodes must split into the cluster's equal sites");
  machine.nranks = nranks;
  machine.nodeOfRank.clear();
  for (int r = 0; r < nranks; ++r) machine.nodeOfRank.push_back(r / (nranks / nodes));
  machine.siteOfNode.clear();
  if (clusterSites > 1)
    for (int k = 0; k < nodes; ++k) machine.siteOfNode.push_back(k / (nodes / clusterSites));

  TunerConfig config;
  config.nranks = nranks;
  config.nodeOfRank = machine.nodeOfRank;
  config.maxChannels = channels > 0 ? channels : 1;
  config.forcedChannels = channels;
  config.shape = costShape(nranks, machine.nodeOfRank, nranks / nodes, machine.slotBytes);
  if (clusterSites > 1) {
    // What a communicator across these sites is told of its site link (the
    // tune file's wan_us and wan_gbps): weft cannot measure it at init.
    for (int r = 0; r < nranks; ++r) config.siteOfRank.push_back(machine.siteOfNode[machine.nodeOfRank[r]]);
    config.constants.wanMicros = machine.wan.latencyMicros;
    config.constants.wanGBps = machine.wan.gbps;
  }
  Tuner tuner(config);

  printf("# weft-sim: %s on %d rank(s), %d node(s)%s; node links %.3g us %.3g GB/s%s, NICs %.3g us %.3g GB/s x %d,\n",
         collectiveName(collective), nranks, nodes,
         clusterSites > 1 ? format(" in %d sites", clusterSites).c_str() : "", machine.intraNode.latencyMicros,
         machine.intraNode.gbps, machine.intraSwitched ? " (switch ports)" : "", machine.network.latencyMicros,
         machine.network.gbps, machine.nicsPerNode);
  if (machine.nodesPerLeaf > 0 || clusterSites > 1)
    printf("# fabric: leaves of %d node(s), oversubscription %.3g; WAN %.3g us %.3g GB/s%s\n", machine.nodesPerLeaf,
           machine.oversubscription, machine.wan.latencyMicros, machine.wan.gbps,
           machine.wanPerNode ? " from each node" : " from each site");
  printf("# %s: copy %.3g GB/s, reduce %.3g GB/s, %.3g us per step; slots %zu B x %d\n",
         machine.enginePerChannel ? "an engine per channel" : "a core per rank", machine.copyGBps, machine.reduceGBps,
         machine.stepMicros, machine.slotBytes, machine.nSlots);
  printf("%12s %16s %12s %10s %10s  %s\n", "bytes", "algorithm", "time (us)", "algbw", "busbw", "busiest link");
  const size_t typeBytes = 4;  // float32
  bool perRank =
      collective != Collective::AllReduce && collective != Collective::Broadcast && collective != Collective::Reduce;
  std::string aggregated;
  for (size_t bytes = lo; bytes <= hi; bytes *= factor) {
    size_t count = bytes / typeBytes / (perRank ? static_cast<size_t>(nranks) : 1);
    auto run = [&](const AlgorithmEntry& entry, int useChannels, sim::ReplayResult* result) {
      PlanRequest request;
      request.collective = collective;
      request.nranks = nranks;
      request.root = collectiveHasRoot(collective) ? 0 : -1;
      request.nChannels = useChannels;
      return sim::simulate(entry, request, count, weftFloat32, machine, result, aggregation, trace);
    };
    const AlgorithmEntry* entry = forced;
    int useChannels = channels > 0 ? channels : 1;
    if (entry == nullptr) {
      TuneCandidate decision = tuner.decide(collective, bytes);
      entry = decision.entry;
      useChannels = channels > 0 ? channels : decision.channels;
    }
    sim::ReplayResult result;
    Status status = run(*entry, useChannels, &result);
    if (!status.isOk()) {
      fprintf(stderr, "weft-sim: %s\n", status.message().c_str());
      return 1;
    }
    if (result.replayedRanks < nranks)
      aggregated = format("# aggregated: %d of %d ranks replayed, the others shifted copies of them (sim/replay.h)",
                          result.replayedRanks, nranks);
    double algbw = result.micros > 0 ? static_cast<double>(bytes) / (result.micros * 1e3) : 0;
    std::string best;
    if (forced == nullptr) {
      // The simulated best of every algorithm that builds the collective,
      // next to the tuner's choice.
      const AlgorithmEntry* bestEntry = entry;
      double bestMicros = result.micros;
      for (const AlgorithmEntry& other : algorithmRegistry()) {
        if (&other == entry || !other.supports(collective)) continue;
        if (other.id == Algorithm::Hierarchical && nodes < 2) continue;  // the flat ring on one node
        sim::ReplayResult r;
        if (!run(other, useChannels, &r).isOk()) continue;
        if (r.micros < bestMicros) bestMicros = r.micros, bestEntry = &other;
      }
      best = bestEntry == entry ? "  best: the same"
                                : format("  best: %s %.2f us (%.2fx)", bestEntry->name, bestMicros,
                                         bestMicros > 0 ? result.micros / bestMicros : 1.0);
    }
    printf("%12s %14s/%d %12.2f %10.3f %10.3f  %s%s%s\n", sizeText(bytes).c_str(), entry->name, useChannels,
           result.micros, algbw, algbw * busFactor(collective, nranks),
           result.busiestLink.empty() ? "none" : result.busiestLink.c_str(),
           result.busiestLink.empty() ? "" : format(" (%.0f%% busy)", 100 * result.busiestLinkUtilisation).c_str(),
           best.c_str());
    if (bytes > hi / factor) break;
  }
  if (!aggregated.empty()) printf("%s\n", aggregated.c_str());
  return 0;
}
