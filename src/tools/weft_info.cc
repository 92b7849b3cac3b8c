// weft-info: the version, the reduction kernels in use, the algorithms of
// the registry (what WEFT_ALGO takes), and the table of environment
// variables weft reads (the one table in core/env.cc).
//   weft-info [--markdown]
//   weft-info --tune --nranks N [--nodes M] [--sites S] [--cores C] [--topo FILE] [--collective NAME] [--all]
//             [--device cuda|emulated]
//     the tuner's decision table for 8 B to 1 GiB, from the cost model alone (nothing runs)
//   weft-info --calibrate [--device cuda|emulated] [--out FILE]
//     measures this host's (or a device's) cost constants and writes them as WEFT_TUNE_FILE (or
//     WEFT_DEVICE_TUNE_FILE) takes them
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <strings.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "algorithms/cost_model.h"
#include "algorithms/registry.h"
#include "algorithms/tuner.h"
#include "core/env.h"
#include "device/runtime.h"
#include "exec/copy.h"
#include "exec/reduce.h"
#include "topology/affinity.h"
#include "topology/machine.h"
#include "topology/search.h"
#include "weft/weft.h"

#if defined(WEFT_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

using namespace weft;

namespace {

int usage(FILE* out, int code) {
  fprintf(
      out,
      "usage: weft-info [--markdown]\n"
      "         the version, the algorithms and the environment variables weft reads\n"
      "       weft-info --tune --nranks N [--nodes M] [--sites S] [--cores C] [--topo FILE] [--collective NAME]\n"
      "                 [--all]\n"
      "         the tuner's choice and predicted time per collective for 8 B to 1 GiB, from the cost model\n"
      "         (WEFT_TUNE_FILE's constants or the defaults; WEFT_ALGO and WEFT_NCHANNELS apply); nothing runs.\n"
      "         N ranks on M nodes (M divides them as evenly as it can), C cores per node (default: this\n"
      "         process's CPUs); --sites: the nodes in S equal sites in order (WEFT_SITEID; the site link's\n"
      "         cost from wan_us and wan_gbps); --topo: the NIC speed and ring channels from an hwloc or weft-topo\n"
      "         XML file;\n"
      "         --collective: one collective, --all: every candidate's predicted time; --processes: the ranks\n"
      "         of one node are processes that read each other's messages by cross-memory attach (WEFT_CMA,\n"
      "         WEFT_CMA_THRESHOLD..WEFT_CMA_MAX), as the tuner of such a communicator weighs it;\n"
      "         --device: GPU communicators on that device (WEFT_DEVICE_TUNE_FILE's constants or the device's\n"
      "         defaults), the protocol (simple or LL) chosen with the algorithm\n"
      "       weft-info --calibrate [--device cuda|emulated] [--out FILE]\n"
      "         measures this host's hand-off latencies and copy and reduce bandwidths (a few seconds) and\n"
      "         writes the constants to FILE (default: standard output) for WEFT_TUNE_FILE; --device: a GPU\n"
      "         communicator's on device 0 (two ranks sharing it), both protocols, for WEFT_DEVICE_TUNE_FILE\n");
  return code;
}

std::string sizeText(size_t bytes) {
  if (bytes >= (1u << 30) && bytes % (1u << 30) == 0) return format("%zu GiB", bytes >> 30);
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return format("%zu MiB", bytes >> 20);
  if (bytes >= 1024 && bytes % 1024 == 0) return format("%zu KiB", bytes >> 10);
  return format("%zu B", bytes);
}

std::string timeText(double micros) {
  if (micros >= 1e6) return format("%.2f s", micros * 1e-6);
  if (micros >= 1e3) return format("%.2f ms", micros * 1e-3);
  return format("%.1f us", micros);
}

int printInfo(bool markdown) {
  int version = 0;
  weftGetVersion(&version);
  const EnvParamInfo* table = envParamTable();
  int count = static_cast<int>(EnvParam::Count);
  if (markdown) {
    printf("| variable | default | meaning |\n|---|---|---|\n");
    for (int i = 0; i < count; ++i)
      printf("| `%s` | `%s` | %s |\n", table[i].name, table[i].defaultValue[0] ? table[i].defaultValue : "(unset)",
             table[i].description);
    return 0;
  }
  printf("weft %d.%d.%d, host reduction kernels: %s\n\n", version / 10000, version / 100 % 100, version % 100,
         reduceKernels().isa);
  printf("Algorithms (WEFT_ALGO, any case):\n");
  for (const AlgorithmEntry& entry : algorithmRegistry())
    printf("  %-12s %s\n               for %s\n", entry.name, entry.summary, supportedCollectives(entry).c_str());
  printf("\nEnvironment variables:\n");
  for (int i = 0; i < count; ++i) {
    const char* value = getenv(table[i].name);
    printf("  %-26s default '%s'%s%s%s\n      %s\n", table[i].name, table[i].defaultValue, value ? ", set to '" : "",
           value ? value : "", value ? "'" : "", table[i].description);
  }
  return 0;
}

struct TuneArgs {
  int nranks = 0, nodes = 1, sites = 1, cores = 0;
  std::string topo, collective;
  bool all = false, processes = false;
  CostTarget target = CostTarget::Host;
};

std::string candidateText(const TuneCandidate& c, bool device) {
  return device ? format("%s/%d/%s", c.entry->name, c.channels, protocolName(c.protocol))
                : format("%s/%d", c.entry->name, c.channels);
}

int printTune(const TuneArgs& args) {
  if (args.nranks < 1 || args.nodes < 1 || args.nodes > args.nranks) {
    fprintf(stderr, "weft-info --tune: needs --nranks N >= 1 and 1 <= --nodes M <= N\n");
    return 2;
  }
  if (args.nodes % args.sites != 0) {
    fprintf(stderr, "weft-info --tune: --sites %d does not split %d nodes evenly\n", args.sites, args.nodes);
    return 2;
  }
  Result<CostConstants> constants = loadCostConstants(args.target);
  if (!constants.isOk()) {
    fprintf(stderr, "weft-info --tune: %s\n", constants.status().message().c_str());
    return 2;
  }
  TunerConfig config;
  config.nranks = args.nranks;
  config.constants = constants.value();
  config.forcedAlgo = envString(EnvParam::Algo);
  Status algo = checkForcedAlgorithm(config.forcedAlgo);
  if (!algo.isOk()) {
    fprintf(stderr, "weft-info --tune: %s\n", algo.message().c_str());
    return 2;
  }
  config.forcedChannels = static_cast<int>(envInt(EnvParam::Nchannels));
  config.maxChannels = config.forcedChannels > 0 ? std::min(config.forcedChannels, Tuner::kMaxChannels) : 1;
  std::string source = "this host";
  if (!args.topo.empty()) {
    Result<MachineTopology> topo = discoverTopology(args.topo);
    if (!topo.isOk()) {
      fprintf(stderr, "weft-info --tune: %s\n", topo.status().message().c_str());
      return 2;
    }
    const MachineTopology& machine = topo.value();
    source = args.topo;
    if (machine.fastestNicGBps() > 0) config.constants.netGBps = machine.fastestNicGBps();
    // The ring of one node's ranks over its GPUs (one rank per GPU, wrapping
    // around), as weft-topo --ranks builds it.
    if (!machine.gpus.empty() && config.forcedChannels <= 0) {
      int perNode = (args.nranks + args.nodes - 1) / args.nodes;
      std::vector<int> deviceOfRank;
      deviceOfRank.reserve(static_cast<size_t>(perNode));
      for (int r = 0; r < perNode; ++r) deviceOfRank.push_back(machine.gpus[r % machine.gpus.size()]);
      config.maxChannels = searchRankRing(machine, deviceOfRank, Tuner::kMaxChannels).channels;
    }
  }
  for (int r = 0; r < args.nranks; ++r)
    config.nodeOfRank.push_back(static_cast<int>(static_cast<long long>(r) * args.nodes / args.nranks));
  if (args.sites > 1)
    for (int node : config.nodeOfRank) config.siteOfRank.push_back(node / (args.nodes / args.sites));
  config.shape = costShape(args.nranks, config.nodeOfRank, args.cores > 0 ? args.cores : affinityCpuCount(),
                           static_cast<size_t>(envInt(slotBytesParam(args.sites))));
  bool device = args.target != CostTarget::Host;
  // As a communicator whose ranks are processes of one node with
  // cross-memory attach sets its tuner up (api/comm.cc).
  if (args.processes && !device && args.nodes == 1 && args.nranks > 1 && envInt(EnvParam::Cma) != 0)
    setCrossMemoryAttachWindow(&config.shape);
  if (device) {
    // As a GPU communicator sets its tuner up (api/comm.cc).
    config.shape.llSlotBytes = std::min<size_t>(8192, config.shape.slotBytes);
    config.lowLatency = args.nodes == 1;
    if (args.target == CostTarget::CudaDevice)
      config.shape.coresPerNode = std::max(config.shape.coresPerNode, config.shape.ranksPerNode);
  }
  Tuner tuner(config);
  std::vector<Collective> collectives(plannedCollectives().begin(), plannedCollectives().end());
  if (!args.collective.empty()) {
    const Collective* named = findPlannedCollective(args.collective);
    if (named == nullptr) {
      fprintf(stderr, "weft-info --tune: --collective %s: expected one of %s\n", args.collective.c_str(),
              plannedCollectiveNames().c_str());
      return 2;
    }
    collectives = {*named};
  }
  const CostShape& shape = tuner.config().shape;
  printf("# weft tuner decisions: %d ranks on %d node(s) (at most %d per node)%s, %d core(s) per node, %s\n",
         shape.nranks, shape.nNodes, shape.ranksPerNode,
         shape.nSites > 1 ? format(" in %d sites", shape.nSites).c_str() : "", shape.coresPerNode, source.c_str());
  if (shape.byAddressMinBytes <= shape.byAddressMaxBytes)
    printf(
        "# processes reading each other by cross-memory attach from %s%s\n", sizeText(shape.byAddressMinBytes).c_str(),
        shape.byAddressMaxBytes == SIZE_MAX ? "" : format(" to %s", sizeText(shape.byAddressMaxBytes).c_str()).c_str());
  EnvParam file = device ? EnvParam::DeviceTuneFile : EnvParam::TuneFile;
  printf("# channels up to %d; %s constants (%s):\n", config.maxChannels, costTargetName(args.target),
         envString(file).empty() ? "defaults" : envString(file).c_str());
  std::string text = formatCostConstants(config.constants);
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    printf("#   %s\n", text.substr(at, end - at).c_str());
    at = end + 1;
  }
  printf("# each size stands for its size class, up to the next power of two; bytes: the larger side\n");
  if (args.all) {
    for (Collective c : collectives) {
      printf("\n%s\n", collectiveName(c));
      for (size_t bytes = 8; bytes <= (size_t{1} << 30); bytes *= 2) {
        printf("%10s ", sizeText(bytes).c_str());
        for (const TuneCandidate& candidate : tuner.candidates(c, bytes))
          printf(" %s %s;", candidateText(candidate, device).c_str(), timeText(candidate.micros).c_str());
        printf("\n");
      }
    }
    return 0;
  }
  printf("\n%10s", "bytes");
  int width = device ? 29 : 22;
  for (Collective c : collectives) printf(" %*s", width, collectiveName(c));
  printf("\n");
  for (size_t bytes = 8; bytes <= (size_t{1} << 30); bytes *= 2) {
    printf("%10s", sizeText(bytes).c_str());
    for (Collective c : collectives) {
      TuneCandidate chosen = tuner.decide(c, bytes);
      double micros = 0;
      for (const TuneCandidate& candidate : tuner.candidates(c, bytes))
        if (candidate.entry == chosen.entry && candidate.channels == chosen.channels &&
            candidate.protocol == chosen.protocol)
          micros = candidate.micros;
      printf(" %*s", width, format("%s %s", candidateText(chosen, device).c_str(), timeText(micros).c_str()).c_str());
    }
    printf("\n");
  }
  return 0;
}

// ---- calibration ----

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// GB/s of fn run over `bytes` per pass, the best of a few timed rounds.
template <typename Fn>
double bestRate(size_t bytes, Fn fn) {
  double best = 0;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    int passes = 0;
    while (passes < 2 || secondsSince(start) < 0.1) {
      fn();
      ++passes;
    }
    best = std::max(best, static_cast<double>(bytes) * passes / secondsSince(start) * 1e-9);
  }
  return best;
}

// A large buffer moved through one slot-sized buffer, in and out, as a rank's
// sends and receives move it (the slot stays in cache, the buffer does not).
struct SlotPaths {
  size_t big = size_t{64} << 20, slot = 131072;
  std::vector<float> a, b, staging;
  SlotPaths() : a(big / 4, 1.0f), b(big / 4, 2.0f), staging(slot / 4, 0.5f) {}
  void copyThrough() {
    char* src = reinterpret_cast<char*>(a.data());
    char* dst = reinterpret_cast<char*>(b.data());
    char* s = reinterpret_cast<char*>(staging.data());
    for (size_t off = 0; off < big; off += slot) {
      memcpy(s, src + off, slot);
      memcpy(dst + off, s, slot);
    }
  }
  void reduceThrough() {
    ReduceFn sum = reduceFunction(weftFloat32, weftSum);
    size_t n = slot / 4;
    for (size_t off = 0; off < big / 4; off += n) sum(b.data() + off, a.data() + off, staging.data(), n);
  }
};

int firstCpu() {
  cpu_set_t mine;
  if (sched_getaffinity(0, sizeof(mine), &mine) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &mine)) return c;
  return 0;
}

void pinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

// One hand-off each way between two threads through a shared flag, as ranks
// hand slots over: spinning on cores of their own, or yielding on one core.
double handoffMicros(bool oneCore) {
  std::atomic<int> turn{0};
  constexpr int kRounds = 20000;
  int cpu = firstCpu();
  auto pin = [&] {
    if (oneCore) pinTo(cpu);
  };
  auto wait = [&](int want) {
    while (turn.load(std::memory_order_acquire) != want)
      if (oneCore) sched_yield();
  };
  // Both sides on threads of their own, so that pinning ends with them.
  double seconds = 0;
  std::thread peer([&] {
    pin();
    for (int i = 0; i < kRounds; ++i) {
      wait(1);
      turn.store(0, std::memory_order_release);
    }
  });
  std::thread self([&] {
    pin();
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kRounds; ++i) {
      turn.store(1, std::memory_order_release);
      wait(0);
    }
    seconds = secondsSince(start);
  });
  self.join();
  peer.join();
  return seconds / (2.0 * kRounds) * 1e6;
}

// Microseconds of one all-reduce of `bytes` bytes (floats) with `algo`
// between two ranks of this process (threads), the best of a few rounds;
// oneCore pins both ranks (and the threads they start) to one CPU.
double allReduceMicros(size_t bytes, const char* algo, bool oneCore) {
  weftUniqueId id;
  if (weftGetUniqueId(&id) != weftSuccess) return 0;
  setenv("WEFT_ALGO", algo, 1);
  std::atomic<double> result{0};
  int cpu = firstCpu();
  auto rank = [&](int r) {
    if (oneCore) pinTo(cpu);
    weftComm_t comm = nullptr;
    if (weftCommInitRank(&comm, 2, id, r) != weftSuccess) return;
    size_t count = std::max<size_t>(1, bytes / sizeof(float));
    std::vector<float> in(count, 1.0f), out(count);
    double best = 1e30;
    int calls = static_cast<int>(std::clamp<size_t>((size_t{64} << 20) / (bytes + 4096), 20, 2000));
    for (int round = 0; round < 5; ++round) {
      // Both ranks start together: an all-reduce as a barrier.
      weftAllReduce(in.data(), out.data(), 1, weftFloat32, weftSum, comm, nullptr);
      weftCommSynchronize(comm);
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < calls; ++i) weftAllReduce(in.data(), out.data(), count, weftFloat32, weftSum, comm, nullptr);
      weftCommSynchronize(comm);
      best = std::min(best, secondsSince(start) / calls);
    }
    if (r == 0) result.store(best * 1e6);
    weftCommDestroy(comm);
  };
  std::thread first(rank, 0), second(rank, 1);  // threads of their own, so pinning ends with them
  first.join();
  second.join();
  unsetenv("WEFT_ALGO");
  return result.load();
}

// Writes calibrated constants after their header text to `out` (standard
// output when empty), for the tune file `variable` names.
int writeConstants(std::string text, const CostConstants& c, const std::string& out, const char* variable) {
  text += formatCostConstants(c);
  if (out.empty()) {
    fputs(text.c_str(), stdout);
    return 0;
  }
  std::ofstream file(out);
  file << text;
  if (!file) {
    fprintf(stderr, "weft-info --calibrate: cannot write %s\n", out.c_str());
    return 1;
  }
  fprintf(stderr, "weft-info: wrote %s (use it with %s=%s)\n", out.c_str(), variable, out.c_str());
  return 0;
}

// Microseconds of one call between `nranks` ranks (threads of this process)
// of GPU communicators sharing device 0, the best of a few rounds:
// an all-reduce, or an all-gather of `bytes` (the output), by `algo` and
// `protocol` (WEFT_DEVICE_PROTOCOL).
double deviceMicros(int nranks, bool allGather, size_t bytes, const char* algo, const char* protocol) {
  weftUniqueId id;
  if (weftGetUniqueId(&id) != weftSuccess) return 0;
  setenv("WEFT_ALGO", algo, 1);
  setenv("WEFT_DEVICE_PROTOCOL", protocol, 1);
  std::atomic<double> result{0};
  std::atomic<bool> failed{false};
  auto rank = [&](int r) {
#if defined(WEFT_HAVE_CUDA)
    if (!device::emulatedDeviceSelected()) cudaSetDevice(0);
#endif
    weftConfig_t config = WEFT_CONFIG_INITIALIZER;
    config.cudaDevice = 0;
    config.allowSharedGpu = 1;
    weftComm_t comm = nullptr;
    if (weftCommInitRankConfig(&comm, nranks, id, r, &config) != weftSuccess) {
      failed.store(true);
      return;
    }
    size_t count = std::max<size_t>(1, bytes / sizeof(float) / (allGather ? nranks : 1));
    void* in = nullptr;
    void* out = nullptr;
    if (weftMemAlloc(&in, count * sizeof(float)) != weftSuccess ||
        weftMemAlloc(&out, count * sizeof(float) * (allGather ? nranks : 1)) != weftSuccess) {
      failed.store(true);
    } else {
      auto call = [&](size_t n) {
        return allGather ? weftAllGather(in, out, n, weftFloat32, comm, nullptr)
                         : weftAllReduce(in, out, n, weftFloat32, weftSum, comm, nullptr);
      };
      double best = 1e30;
      int calls = static_cast<int>(std::clamp<size_t>((size_t{256} << 20) / (bytes + 65536), 5, 500));
      for (int round = 0; round < 4; ++round) {
        call(count);  // both ranks start together
        weftCommSynchronize(comm);
        auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < calls; ++i) call(count);
        if (weftCommSynchronize(comm) != weftSuccess) failed.store(true);
        best = std::min(best, secondsSince(start) / calls);
      }
      if (r == 0) result.store(best * 1e6);
    }
    weftMemFree(in);
    weftMemFree(out);
    weftCommDestroy(comm);
  };
  std::vector<std::thread> ranks;
  ranks.reserve(static_cast<size_t>(nranks));
  for (int r = 0; r < nranks; ++r) ranks.emplace_back(rank, r);
  for (std::thread& t : ranks) t.join();
  unsetenv("WEFT_ALGO");
  unsetenv("WEFT_DEVICE_PROTOCOL");
  return failed.load() ? 0 : result.load();
}

// A GPU communicator's constants on device 0: the call from one rank alone,
// each protocol's hand-off as the ring's second hop over one-shot's one (8 B
// between two ranks sharing the device), its copy rate from a 2-rank
// all-gather (1.5 S copied per rank), the simple protocol's reduce rate
// from a 2-rank ring all-reduce (S copied, S / 2 reduced).
int calibrateDevice(CostTarget target, const std::string& out) {
  if (target == CostTarget::EmulatedDevice) setenv("WEFT_DEVICE", "emulated", 1);
  CostConstants c = defaultCostConstants(target);
  fprintf(stderr, "weft-info: measuring the %s's launches and hand-offs...\n", costTargetName(target));
  double call = deviceMicros(1, false, 8, "ring", "simple");
  if (call <= 0) {
    fprintf(stderr, "weft-info --calibrate --device: no GPU communicator on device 0 (%s)\n",
            target == CostTarget::CudaDevice ? "is there a GPU?" : "emulated");
    return 1;
  }
  c.callMicros = call;
  double hop[2] = {c.hopMicros, c.llHopMicros}, shots[2] = {0, 0}, rings[2] = {0, 0};
  const char* protocols[2] = {"simple", "ll"};
  for (int p = 0; p < 2; ++p) {
    shots[p] = deviceMicros(2, false, 8, "oneshot", protocols[p]);
    rings[p] = deviceMicros(2, false, 8, "ring", protocols[p]);
    if (rings[p] > shots[p] && shots[p] > 0) hop[p] = std::max(0.01, rings[p] - shots[p]);
  }
  c.hopMicros = hop[0];
  c.switchMicros = target == CostTarget::CudaDevice ? hop[0] : c.switchMicros;
  c.llHopMicros = hop[1];
  fprintf(stderr, "weft-info: measuring the %s's copy and reduce rates...\n", costTargetName(target));
  size_t big = target == CostTarget::CudaDevice ? size_t{256} << 20 : size_t{32} << 20;
  size_t llBytes = target == CostTarget::CudaDevice ? size_t{64} << 20 : size_t{2} << 20;
  double gather = deviceMicros(2, true, big, "ring", "simple");
  double llGather = deviceMicros(2, true, llBytes, "ring", "ll");
  double reduce = deviceMicros(2, false, big, "ring", "simple");
  auto rate = [](double bytes, double micros) { return bytes / (micros * 1e3); };  // GB/s
  if (gather > call) c.copyGBps = rate(1.5 * static_cast<double>(big), gather - call);
  if (llGather > call) c.llCopyGBps = rate(1.5 * static_cast<double>(llBytes), llGather - call);
  double reduceMicros = reduce - call - static_cast<double>(big) / (c.copyGBps * 1e3);
  if (reduceMicros > 0) c.reduceGBps = rate(0.5 * static_cast<double>(big), reduceMicros);
  std::string text = format(
      "# weft cost constants of a GPU communicator on the %s, measured by weft-info --calibrate --device:\n"
      "# 1 rank 8 B all-reduce %.2f us; 2 ranks 8 B one-shot / ring: simple %.2f / %.2f us, LL %.2f / %.2f us;\n"
      "# 2-rank ring all-gather of %zu MiB simple %.1f us, of %zu MiB LL %.1f us; all-reduce %.1f us.\n"
      "# step_us, node_copy_gbps and the net and site constants are the device's defaults\n",
      costTargetName(target), call, shots[0], rings[0], shots[1], rings[1], big >> 20, gather, llBytes >> 20, llGather,
      reduce);
  return writeConstants(text, c, out, "WEFT_DEVICE_TUNE_FILE");
}

int calibrate(const std::string& out) {
  CostConstants c;  // defaults for what cannot be measured on one host
  SlotPaths paths;
  fprintf(stderr, "weft-info: measuring copy and reduce bandwidth through a %zu-byte slot...\n", paths.slot);
  c.copyGBps = bestRate(paths.big, [&] { paths.copyThrough(); }) * 2;  // two copies a pass
  c.reduceGBps = bestRate(paths.big, [&] { paths.reduceThrough(); });
  int cpus = affinityCpuCount();
  {
    std::vector<SlotPaths> each(static_cast<size_t>(cpus));
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(cpus));
    std::atomic<double> seconds{0};
    for (int t = 0; t < cpus; ++t)
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load()) std::this_thread::yield();
        auto start = std::chrono::steady_clock::now();
        for (int pass = 0; pass < 4; ++pass) each[static_cast<size_t>(t)].copyThrough();
        double mine = secondsSince(start);
        double seen = seconds.load();
        while (mine > seen && !seconds.compare_exchange_weak(seen, mine)) {
        }
      });
    while (ready.load() < cpus) std::this_thread::yield();
    go.store(true);
    for (std::thread& t : threads) t.join();
    c.nodeCopyGBps = static_cast<double>(paths.big) * 2 * 4 * cpus / seconds.load() * 1e-9;
  }
  fprintf(stderr, "weft-info: measuring hand-off latencies...\n");
  double spin = cpus > 1 ? handoffMicros(false) : 0;
  double yield = handoffMicros(true);
  // 8 bytes between two ranks: one-shot is the call and one hop, the ring
  // the call and two; on one core the hops wait for the scheduler.
  double shot = 0, ring = 0, shotCrowded = 0, ringCrowded = 0;
  if (cpus > 1) {
    shot = allReduceMicros(8, "oneshot", false);
    ring = allReduceMicros(8, "ring", false);
  }
  shotCrowded = allReduceMicros(8, "oneshot", true);
  ringCrowded = allReduceMicros(8, "ring", true);
  if (ring > shot && shot > 0) {
    c.hopMicros = ring - shot;
    c.callMicros = std::max(0.05, shot - c.hopMicros);
  }
  if (ringCrowded > shotCrowded && shotCrowded > 0) c.switchMicros = ringCrowded - shotCrowded;
  std::string text = format(
      "# weft cost constants, measured by weft-info --calibrate on %d CPU(s); net_* are not measured\n"
      "# (one host has no network to time): set them by hand for multi-node runs.\n"
      "# bare hand-offs: %.3f us spinning, %.3f us yielding one core; 2-rank 8 B all-reduce: one-shot %.2f us,\n"
      "# ring %.2f us, on one core %.2f and %.2f us; step_us is not measured (the shipped value)\n",
      cpus, spin, yield, shot, ring, shotCrowded, ringCrowded);
  return writeConstants(text, c, out, "WEFT_TUNE_FILE");
}

}  // namespace

int main(int argc, char** argv) {
  enum {
    kMarkdown = 1,
    kTune,
    kCalibrate,
    kNranks,
    kNodes,
    kSites,
    kCores,
    kTopo,
    kCollective,
    kAll,
    kProcesses,
    kDevice,
    kOut,
    kHelp
  };
  const option options[] = {{"markdown", no_argument, nullptr, kMarkdown},
                            {"tune", no_argument, nullptr, kTune},
                            {"calibrate", no_argument, nullptr, kCalibrate},
                            {"nranks", required_argument, nullptr, kNranks},
                            {"nodes", required_argument, nullptr, kNodes},
                            {"sites", required_argument, nullptr, kSites},
                            {"cores", required_argument, nullptr, kCores},
                            {"topo", required_argument, nullptr, kTopo},
                            {"collective", required_argument, nullptr, kCollective},
                            {"all", no_argument, nullptr, kAll},
                            {"processes", no_argument, nullptr, kProcesses},
                            {"device", required_argument, nullptr, kDevice},
                            {"out", required_argument, nullptr, kOut},
                            {"help", no_argument, nullptr, kHelp},
                            {nullptr, 0, nullptr, 0}};
  bool markdown = false, tune = false, calibrateMode = false;
  TuneArgs args;
  std::string out;
  auto number = [](const char* text, int* value) {
    char* end = nullptr;
    long parsed = strtol(text, &end, 10);
    if (end == text || *end != '\0' || parsed < 1 || parsed > (1 << 24)) return false;
    *value = static_cast<int>(parsed);
    return true;
  };
  for (int opt; (opt = getopt_long(argc, argv, "", options, nullptr)) != -1;) {
    switch (opt) {
      case kMarkdown: markdown = true; break;
      case kTune: tune = true; break;
      case kCalibrate: calibrateMode = true; break;
      case kNranks:
      case kNodes:
      case kSites:
      case kCores:
        if (!number(optarg, opt == kNranks  ? &args.nranks
                            : opt == kNodes ? &args.nodes
                            : opt == kSites ? &args.sites
                                            : &args.cores)) {
          fprintf(stderr, "weft-info: '%s' is not a count from 1 to 16777216\n", optarg);
          return 2;
        }
        break;
      case kTopo: args.topo = optarg; break;
      case kCollective: args.collective = optarg; break;
      case kAll: args.all = true; break;
      case kProcesses: args.processes = true; break;
      case kDevice:
        if (strcasecmp(optarg, "cuda") == 0) {
          args.target = CostTarget::CudaDevice;
        } else if (strcasecmp(optarg, "emulated") == 0) {
          args.target = CostTarget::EmulatedDevice;
        } else {
          fprintf(stderr, "weft-info: --device %s: expected cuda or emulated\n", optarg);
          return 2;
        }
        break;
      case kOut: out = optarg; break;
      case kHelp: return usage(stdout, 0);
      default: return usage(stderr, 2);
    }
  }
  if (optind < argc || (tune && calibrateMode) || (markdown && (tune || calibrateMode))) return usage(stderr, 2);
  if (tune) return printTune(args);
  if (calibrateMode) return args.target == CostTarget::Host ? calibrate(out) : calibrateDevice(args.target, out);
  return printInfo(markdown);
}
