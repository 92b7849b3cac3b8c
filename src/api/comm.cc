// Communicator life cycle: unique id, init, destroy, abort, queries.
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>

#include "algorithms/plan_verifier.h"
#include "api/comm.h"
#include "api/config.h"
#include "cuda/cuda_device.h"
#include "device/device_executor.h"
#include "core/env.h"
#include "core/fault.h"
#include "core/logging.h"
#include "core/types.h"
#include "topology/affinity.h"
#include "topology/machine.h"
#include "topology/search.h"

using namespace weft;

namespace {

constexpr int kHostIdBytes = 128;

// A size a call is cut into (WEFT_BUFFSIZE's slots, WEFT_CMA_SLICE's
// pieces): a multiple of 64 bytes from 4 KiB to 1 GiB.
Result<size_t> pieceBytes(EnvParam param) {
  int64_t bytes = envInt(param);
  if (bytes < 4096 || bytes % 64 != 0 || bytes > (int64_t{1} << 30))
    return WEFT_ERROR(weftInvalidArgument, "%s=%lld: must be a multiple of 64 from 4096 to 1 GiB",
                      envParamInfo(param).name, static_cast<long long>(bytes));
  return static_cast<size_t>(bytes);
}

struct HostInfo {
  char hostId[kHostIdBytes];
  char siteId[kHostIdBytes];  // WEFT_SITEID ("" : the one site)
  int32_t pid;
  int32_t numa;         // NUMA node this rank runs on, -1 if unknown
  int32_t cudaDevice;   // -1 for host communicators
  char gpuBusId[32];    // "" for host communicators
  int32_t cores;        // CPUs this rank may run on
  double nicGBps;       // the fastest NIC the topology knows on this node, 0 if none
  CostConstants costs;  // the tuner's constants this rank loaded (rank 0's are used)
};

// Hostname plus boot id: two containers with one hostname are still told
// apart; WEFT_HOSTID overrides (network namespaces emulating nodes).
std::string hostIdentity() {
  if (envIsSet(EnvParam::HostId)) return envString(EnvParam::HostId);
  char host[64] = {0};
  gethostname(host, sizeof(host) - 1);
  std::string bootId;
  std::ifstream boot("/proc/sys/kernel/random/boot_id");
  std::getline(boot, bootId);
  return std::string(host) + "/" + bootId;
}

// Where this rank sits in its node's ring, as the topology search put it
// (position -1: no usable topology), and the channels the search chose.
struct RingPlace {
  int32_t position = -1;
  int32_t channels = 1;
};

struct LocalRing {
  std::vector<int> order;  // indices into the node's ranks
  int channels = 1;
  std::string description;
  std::string problem;  // non-empty: no usable topology
};

// This node's ring from the machine graph: each rank's device is the NUMA
// node it runs on (where its host buffers are).
LocalRing localRing(const std::vector<int>& local, const std::vector<int>& numaOfRank, int maxChannels) {
  LocalRing out;
  ProcessTopology machine = processTopology();
  if (!machine.topo) {
    out.problem = "no machine topology (" + machine.problem + ")";
    return out;
  }
  const MachineTopology& topo = *machine.topo;
  std::vector<int> devices;
  for (int r : local) {
    int numa = numaOfRank[r], found = -1;
    for (int node : topo.numaNodes)
      if (topo.nodes[node].numa == numa) found = node;
    if (found < 0) {
      out.problem =
          format("rank %d runs on NUMA node %d, which the topology (%s) does not have", r, numa, topo.source.c_str());
      return out;
    }
    devices.push_back(found);
  }
  RankRing ring = searchRankRing(topo, devices, maxChannels);
  out.order = ring.order;
  out.channels = ring.channels;
  out.description = format("%zu device(s) from %s, slowest hop %s", ring.devices.order.size(), topo.source.c_str(),
                           pathClassName(ring.devices.worstClass));
  if (ring.devices.bottleneckGBps > 0) out.description += format(" at %.1f GB/s", ring.devices.bottleneckGBps);
  out.description += format(", %d socket crossing(s), %d channel(s) of %.0f GB/s", ring.devices.socketCrossings,
                            ring.channels, kChannelGBps);
  return out;
}

// The key ordering each node's ranks in the ring: the searched position
// where every rank of the node has one and they agree, else the NUMA node.
// searchChannels: the fewest any node asked for.
std::vector<int> agreedRingKeys(const std::vector<int>& nodeOfRank, const std::vector<int>& numaOfRank,
                                const std::vector<RingPlace>& places, int* searchChannels) {
  size_t n = nodeOfRank.size();
  std::map<int, std::vector<size_t>> ranksOfNode;
  for (size_t r = 0; r < n; ++r) ranksOfNode[nodeOfRank[r]].push_back(r);
  std::vector<int> keys(n);
  *searchChannels = Tuner::kMaxChannels;
  for (const auto& [node, ranks] : ranksOfNode) {
    std::vector<int> sorted;
    for (size_t r : ranks) sorted.push_back(places[r].position);
    std::sort(sorted.begin(), sorted.end());
    bool permutation = true;
    for (size_t i = 0; i < sorted.size(); ++i) permutation &= sorted[i] == static_cast<int>(i);
    for (size_t r : ranks) {
      keys[r] = permutation ? places[r].position : numaOfRank[r];
      *searchChannels = std::min(*searchChannels, permutation ? static_cast<int>(places[r].channels) : 1);
    }
  }
  *searchChannels = std::max(1, *searchChannels);
  return keys;
}

Status initComm(weftComm* comm, int nranks, const weftUniqueId& commId, int rank, const CommOptions& options) {
  if (nranks < 1) return WEFT_ERROR(weftInvalidArgument, "nranks=%d: a communicator needs at least one rank", nranks);
  if (rank < 0 || rank >= nranks)
    return WEFT_ERROR(weftInvalidArgument, "rank %d is outside [0, %d) for nranks=%d", rank, nranks, nranks);
  Result<UniqueIdData> id = decodeUniqueId(commId);
  if (!id.isOk()) return id.status();
  // A GPU communicator's device must exist before this rank joins the others.
  CudaDeviceInfo gpu;
  if (options.cudaDevice >= 0 && device::emulatedDeviceSelected()) {
    gpu.ordinal = options.cudaDevice;
    gpu.busId = format("emulated:%d", options.cudaDevice);
    gpu.name = "emulated device";
  } else if (options.cudaDevice >= 0) {
    Result<CudaDeviceInfo> device = queryCudaDevice(options.cudaDevice);
    if (!device.isOk())
      return WEFT_ERROR(device.status().code(), "rank %d: %s", rank, device.status().message().c_str());
    gpu = device.value();
  }
  // The tuner's constants (a GPU communicator's: its device's); a bad
  // WEFT_TUNE_FILE or WEFT_DEVICE_TUNE_FILE fails here, before the other
  // ranks are joined.
  CostTarget costTarget = options.cudaDevice < 0             ? CostTarget::Host
                          : device::emulatedDeviceSelected() ? CostTarget::EmulatedDevice
                                                             : CostTarget::CudaDevice;
  Result<CostConstants> costs = loadCostConstants(costTarget);
  if (!costs.isOk()) return WEFT_ERROR(costs.status().code(), "rank %d: %s", rank, costs.status().message().c_str());
  comm->rank = rank;
  comm->nranks = nranks;
  if (id.value().rootStartedByRank0 && rank == 0) {
    Result<SocketAddress> root = startBootstrapRoot(id.value().root, id.value().secret);
    if (!root.isOk())
      return WEFT_ERROR(root.status().code(), "rank 0: cannot start the bootstrap root at WEFT_COMM_ID=%s: %s",
                        id.value().root.toString().c_str(), root.status().message().c_str());
  }
  // The liveness service first, so that its address travels with the
  // bootstrap table: from the first exchange on, a rank that times out can
  // ask every peer whether it still answers.
  Result<SocketAddress> listenAddress = Bootstrap::listenAddressFor(id.value());
  if (!listenAddress.isOk()) return listenAddress.status();
  Result<std::unique_ptr<LivenessService>> liveness =
      LivenessService::start(listenAddress.value(), id.value().secret, rank, nranks,
                             [comm](LivenessReply* reply) { reportLiveness(comm, reply); });
  if (!liveness.isOk()) return liveness.status();
  comm->liveness = liveness.take();
  Result<std::unique_ptr<Bootstrap>> boot =
      Bootstrap::create(id.value(), rank, nranks, &comm->abortFlag, comm->liveness->address());
  if (!boot.isOk()) return boot.status();
  comm->bootstrap = boot.take();
  for (int r = 0; r < nranks; ++r) comm->livenessAddresses.push_back(comm->bootstrap->serviceAddress(r));
  faultPoint("init.bootstrap", rank);

  // Which ranks share this node.
  std::vector<HostInfo> hosts(static_cast<size_t>(nranks));
  std::string me = hostIdentity();
  snprintf(hosts[rank].hostId, kHostIdBytes, "%s", me.c_str());
  snprintf(hosts[rank].siteId, kHostIdBytes, "%s", envString(EnvParam::SiteId).c_str());
  hosts[rank].pid = getpid();
  unsigned cpu = 0, numa = 0;
  hosts[rank].numa = getcpu(&cpu, &numa) == 0 ? static_cast<int32_t>(numa) : -1;
  hosts[rank].cudaDevice = options.cudaDevice;
  snprintf(hosts[rank].gpuBusId, sizeof(hosts[rank].gpuBusId), "%s", gpu.busId.c_str());
  hosts[rank].cores = affinityCpuCount();
  ProcessTopology machine = processTopology();
  hosts[rank].nicGBps = machine.topo ? machine.topo->fastestNicGBps() : 0;
  hosts[rank].costs = costs.value();
  WEFT_CHECK(comm->bootstrap->allGather(hosts.data(), sizeof(HostInfo)));
  faultPoint("init.hosts", rank);
  for (const HostInfo& host : hosts) {
    std::string id(host.hostId, strnlen(host.hostId, kHostIdBytes));
    comm->rankHosts.push_back(format("%s:%d", id.substr(0, id.find('/')).c_str(), host.pid));
  }
  // Every rank sees the same table, so every rank refuses alike.
  std::vector<std::string> gpuOfRank(static_cast<size_t>(nranks));
  std::vector<int> cudaDeviceOfRank(static_cast<size_t>(nranks));
  for (int r = 0; r < nranks; ++r) {
    if (hosts[r].gpuBusId[0] != '\0')
      gpuOfRank[r] = std::string(hosts[r].hostId, strnlen(hosts[r].hostId, kHostIdBytes)) + " " + hosts[r].gpuBusId;
    cudaDeviceOfRank[r] = hosts[r].cudaDevice;
    if ((hosts[r].cudaDevice >= 0) != (options.cudaDevice >= 0))
      return WEFT_ERROR(weftInvalidUsage, "rank %d uses %s but rank %d uses %s: all ranks of a communicator must agree",
                        rank, options.cudaDevice >= 0 ? "a GPU" : "host memory", r,
                        hosts[r].cudaDevice >= 0 ? "a GPU" : "host memory");
  }
  WEFT_CHECK(checkGpuSharing(gpuOfRank, cudaDeviceOfRank, options.allowSharedGpu));
  bool samePeerProcess = true;
  for (int r = 0; r < nranks; ++r)
    samePeerProcess = samePeerProcess && hosts[r].pid == hosts[rank].pid &&
                      strncmp(hosts[r].hostId, hosts[rank].hostId, kHostIdBytes) == 0;
  if (options.cudaDevice >= 0) {
    Result<std::shared_ptr<device::Runtime>> runtime = device::runtimeFor(options.cudaDevice);
    if (!runtime.isOk())
      return WEFT_ERROR(runtime.status().code(), "rank %d: %s", rank, runtime.status().message().c_str());
    comm->device = runtime.value();
  }
  // Nodes: ranks with one host identity. Each peer is reached by the first
  // transport of the selection list that can connect to it (shared memory
  // inside the node, the network across nodes).
  std::vector<int> local, nodeOfRank(static_cast<size_t>(nranks));
  std::vector<bool> remote(static_cast<size_t>(nranks), false);
  std::vector<int8_t> transportOf(static_cast<size_t>(nranks), kShmTransport);
  int nNodes = 0;
  for (int r = 0; r < nranks; ++r) {
    nodeOfRank[r] = r;
    for (int q = 0; q < r; ++q)
      if (strncmp(hosts[r].hostId, hosts[q].hostId, kHostIdBytes) == 0) {
        nodeOfRank[r] = nodeOfRank[q];
        break;
      }
    if (nodeOfRank[r] == r) ++nNodes;
    PeerFacts facts;
    facts.sameHost = strncmp(hosts[r].hostId, hosts[rank].hostId, kHostIdBytes) == 0;
    if (r != rank) transportOf[r] = static_cast<int8_t>(chooseTransport(facts));
    remote[r] = transportOf[r] == kNetTransport;
    if (transportOf[r] == kShmTransport) local.push_back(r);
  }
  int localIndex = static_cast<int>(std::find(local.begin(), local.end(), rank) - local.begin());
  // Sites: numbered in the order of their lowest rank; a node is in one.
  std::vector<int> siteOfRank(static_cast<size_t>(nranks));
  int nSites = 0;
  for (int r = 0; r < nranks; ++r) {
    siteOfRank[r] = -1;
    for (int q = 0; q < r && siteOfRank[r] < 0; ++q)
      if (strncmp(hosts[r].siteId, hosts[q].siteId, kHostIdBytes) == 0) siteOfRank[r] = siteOfRank[q];
    if (siteOfRank[r] < 0) siteOfRank[r] = nSites++;
    int first = nodeOfRank[r];  // the node's lowest rank
    if (siteOfRank[r] != siteOfRank[first])
      return WEFT_ERROR(weftInvalidUsage,
                        "rank %d: ranks %d and %d share a node but name different sites (WEFT_SITEID \"%.*s\" and "
                        "\"%.*s\")",
                        rank, first, r, kHostIdBytes, hosts[first].siteId, kHostIdBytes, hosts[r].siteId);
  }

  TunerConfig tunerConfig;
  tunerConfig.nranks = nranks;
  tunerConfig.forcedChannels = static_cast<int>(envInt(EnvParam::Nchannels));
  if (options.maxChannels > 0 && tunerConfig.forcedChannels > options.maxChannels)
    tunerConfig.forcedChannels = options.maxChannels;
  tunerConfig.maxChannels = std::max(1, std::min(tunerConfig.forcedChannels, 16));
  tunerConfig.rank = rank;
  tunerConfig.forcedAlgo = envString(EnvParam::Algo);
  WEFT_CHECK(checkForcedAlgorithm(tunerConfig.forcedAlgo));
#ifdef NDEBUG
  tunerConfig.verifyPlans = envInt(EnvParam::VerifyPlans) != 0;
#else
  tunerConfig.verifyPlans = true;
#endif
  // Ring order from the topology: this node's ranks ordered by the search
  // over the machine graph, every node's ranks contiguous.
  std::vector<int> numaOfRank(static_cast<size_t>(nranks));
  for (int r = 0; r < nranks; ++r) numaOfRank[r] = hosts[r].numa;
  LocalRing mine = localRing(local, numaOfRank, options.maxChannels > 0 ? options.maxChannels : Tuner::kMaxChannels);
  if (!mine.problem.empty() && localIndex == 0)
    WEFT_WARN("rank %d: %s; the ring falls back to grouping this node's ranks by NUMA node", rank,
              mine.problem.c_str());
  RingPlace place;
  if (mine.problem.empty()) {
    place.position =
        static_cast<int32_t>(std::find(mine.order.begin(), mine.order.end(), localIndex) - mine.order.begin());
    place.channels = mine.channels;
  }
  std::vector<RingPlace> places(static_cast<size_t>(nranks));
  places[rank] = place;
  WEFT_CHECK(comm->bootstrap->allGather(places.data(), sizeof(RingPlace)));
  int searchChannels = 1;
  std::vector<int> ringKey = agreedRingKeys(nodeOfRank, numaOfRank, places, &searchChannels);
  RingOrder ring = multiNodeRingOrder(nodeOfRank, ringKey);
  // A site's nodes one after another, so that the ring crosses each site
  // link once each way.
  std::stable_sort(ring.begin(), ring.end(), [&](int a, int b) { return siteOfRank[a] < siteOfRank[b]; });
  // Channel pairs enter and leave each node at a different rank (and NIC).
  tunerConfig.rings = channelRings(ring, nodeOfRank, Tuner::kMaxChannels);
  tunerConfig.nodeOfRank = nodeOfRank;
  if (nSites > 1) tunerConfig.siteOfRank = siteOfRank;
  // The cost model's view, the same on every rank: rank 0's constants, the
  // fewest cores any rank has, the slowest node's fastest NIC.
  tunerConfig.constants = hosts[0].costs;
  int fewestCores = hosts[0].cores;
  double nic = 0;
  for (const HostInfo& host : hosts) {
    fewestCores = std::min(fewestCores, host.cores);
    if (host.nicGBps > 0) nic = nic > 0 ? std::min(nic, host.nicGBps) : host.nicGBps;
  }
  if (nic > 0) tunerConfig.constants.netGBps = nic;
  // A channel walks its slices in order, each through all its steps, and a
  // slice's steps wait on the site link's latency where they cross it: with
  // milliseconds a crossing, the default slots' many slices leave the link
  // mostly idle; fewer, larger ones keep it busy (docs/performance.md, "Two
  // sites").
  const EnvParam slotParam = slotBytesParam(nSites);
  Result<size_t> slotBytes = pieceBytes(slotParam);
  WEFT_CHECK(slotBytes.status());
  if (slotParam == EnvParam::SiteBufferSize)
    WEFT_INFO(kLogInit, "rank %d: %d sites: FIFO slots of %zu bytes (WEFT_SITE_BUFFSIZE)", rank, nSites,
              slotBytes.value());
  tunerConfig.shape = costShape(nranks, nodeOfRank, fewestCores, slotBytes.value());
  if (costTarget != CostTarget::Host) {
    // The device protocols' slots (DeviceExecutorConfig below), and LL as a
    // candidate inside a node unless a protocol is forced.
    tunerConfig.shape.llSlotBytes = std::min<size_t>(8192, slotBytes.value());
    tunerConfig.lowLatency =
        nNodes == 1 && envString(EnvParam::DeviceProtocol).empty() && envInt(EnvParam::LlThreshold) < 0;
    // A GPU runs the blocks of the ranks sharing it side by side: their
    // hand-offs do not wait for a CPU core (the emulated device's do).
    if (costTarget == CostTarget::CudaDevice)
      tunerConfig.shape.coresPerNode = std::max(tunerConfig.shape.coresPerNode, tunerConfig.shape.ranksPerNode);
  }
  if (tunerConfig.forcedChannels <= 0) tunerConfig.maxChannels = std::min(searchChannels, Tuner::kMaxChannels);
  if (rank == 0 && logEnabled(LogLevel::Info, kLogGraph)) {
    std::string text;
    for (int r : ring)
      text += nSites > 1 ? format(" %d(node %d, site %d, numa %d)", r, nodeOfRank[r], siteOfRank[r], hosts[r].numa)
                         : format(" %d(node %d, numa %d)", r, nodeOfRank[r], hosts[r].numa);
    WEFT_INFO(kLogGraph, "ring over %d ranks on %d node(s)%s:%s", nranks, nNodes,
              nSites > 1 ? format(" in %d sites", nSites).c_str() : "", text.c_str());
    WEFT_INFO(kLogGraph, "this node: %s", mine.problem.empty() ? mine.description.c_str() : "no topology");
    int channels = tunerConfig.forcedChannels > 0 ? tunerConfig.forcedChannels : searchChannels;
    size_t nRings = tunerConfig.rings.size();
    for (int c = 0; c < std::min(channels, Tuner::kMaxChannels); ++c) {
      size_t k = static_cast<size_t>(c) % nRings / 2;
      WEFT_INFO(kLogGraph, "channel %d: ring%s%s%s", c, c % 2 == 0 ? "" : " backwards",
                k > 0 ? format(", each node's ranks rotated by %zu", k).c_str() : "",
                tunerConfig.forcedChannels > 0 ? " (WEFT_NCHANNELS)" : "");
    }
  }

  // The host threads of this rank (worker, net proxy) run on the CPUs of the
  // NUMA node it runs on (where its buffers' memory is), within any binding
  // already in place.
  cpu_set_t rankCpus;
  bool bindThreads = numaNodeCpus(hosts[rank].numa, &rankCpus);

  if (nranks > 1) {
    ShmConfig shmConfig;
    shmConfig.nChannels = tunerConfig.maxChannels;
    shmConfig.slotBytes = slotBytes.value();
    shmConfig.nSlots = static_cast<int>(envInt(EnvParam::Nslots));
    shmConfig.crossMemoryAttach = envInt(EnvParam::Cma) != 0;
    // A step holds a received slot while it waits for a free one to send
    // into; with one slot per FIFO a ring deadlocks (the plan verifier
    // proves plans with kMinFifoSlots).
    if (shmConfig.nSlots < kMinFifoSlots || shmConfig.nSlots > 1024)
      return WEFT_ERROR(weftInvalidArgument, "WEFT_NSLOTS=%d: must be %d..1024", shmConfig.nSlots, kMinFifoSlots);
    Result<std::unique_ptr<ShmTransport>> shm = ShmTransport::create(*comm->bootstrap, local, rank, shmConfig);
    if (!shm.isOk()) return shm.status();
    faultPoint("init.shm", rank);
    std::unique_ptr<NetTransport> net;
    if (nNodes > 1) {
      NetConfig netConfig;
      netConfig.nChannels = shmConfig.nChannels;
      netConfig.slotBytes = shmConfig.slotBytes;
      netConfig.nSlots = shmConfig.nSlots;
      netConfig.timeoutNanos = options.timeoutNanos;
      netConfig.numaNode = hosts[rank].numa;
      netConfig.localIndex = localIndex;
      netConfig.bindProxy = bindThreads;
      netConfig.proxyCpus = rankCpus;
      if (comm->device) {
        // GPUDirect RDMA: the kernel's slots to and from other nodes in
        // device memory, if the NIC takes it (NetTransport decides).
        int64_t gdr = envInt(EnvParam::NetGdr);
        netConfig.wantDeviceSlots = gdr > 0 || (gdr < 0 && costTarget == CostTarget::CudaDevice);
        std::shared_ptr<device::Runtime> rt = comm->device;
        netConfig.deviceSlotCount = device::kFifoDepth;
        netConfig.allocateDeviceSlots = [rt](size_t bytes) -> void* {
          Result<void*> p = rt->allocate(bytes);
          return p.isOk() ? p.value() : nullptr;
        };
        netConfig.freeDeviceSlots = [rt](void* p) { rt->free(p); };
        netConfig.flushDeviceWrites = [rt] { rt->flushRemoteWrites(); };
      }
      Result<std::unique_ptr<NetTransport>> created =
          NetTransport::create(*comm->bootstrap, remote, rank, netConfig, &comm->abortFlag);
      if (!created.isOk()) return created.status();
      faultPoint("init.net", rank);
      net = created.take();
    }
    std::vector<std::unique_ptr<Transport>> transports(transportList().size());
    transports[kShmTransport] = shm.take();
    transports[kNetTransport] = std::move(net);
    comm->transports = std::make_unique<Transports>(std::move(transports), transportOf, shmConfig.slotBytes);
  }
  // Where every peer reads this rank's messages by cross-memory attach (the
  // same on every rank: CMA is used only where every pair allows it), a copy
  // collective's sends cost the sender no copy in that window of sizes.
  // (The executor gets the same window below.)
  CostShape cmaWindow;
  setCrossMemoryAttachWindow(&cmaWindow);
  if (comm->transports && comm->transports->everyPeerCopiesByAddress()) {
    tunerConfig.shape.byAddressMinBytes = cmaWindow.byAddressMinBytes;
    tunerConfig.shape.byAddressMaxBytes = cmaWindow.byAddressMaxBytes;
  }
  comm->tuner = std::make_unique<Tuner>(tunerConfig);
  ExecutorContext context;
  context.rank = rank;
  context.nranks = nranks;
  context.transports = comm->transports.get();
  context.abortFlag = &comm->abortFlag;
  context.timeoutNanos = options.timeoutNanos;
  int64_t spin = envInt(EnvParam::SpinCount);
  context.adaptiveSpin = spin < 0;  // chosen here, so the budget may lower it
  if (spin < 0) {
    int cores = hosts[rank].cores;
    spin = static_cast<int64_t>(local.size()) > cores ? 10 : 200;
    WEFT_INFO(kLogInit, "rank %d: %zu ranks on this node, %d cores: spinning %lld polls before yielding", rank,
              local.size(), cores, static_cast<long long>(spin));
  }
  context.spinCount = static_cast<uint64_t>(spin);
  context.maxChannels = tunerConfig.maxChannels;
  context.zeroCopy = envInt(EnvParam::ZeroCopy) != 0;
  context.zeroCopyThreshold = static_cast<size_t>(std::max<int64_t>(0, envInt(EnvParam::ZeroCopyThreshold)));
  int64_t zeroCopyMax = envInt(EnvParam::ZeroCopyMax);
  if (zeroCopyMax < 0) {
    // Measured on a VM of each (docs/performance.md, "Ranks as threads"):
    // 64-256 MiB all-reduces by address ran 7% slower than through the FIFO
    // on AMD EPYC and 10-21% faster (33% in place) on Intel Sapphire Rapids.
    std::string vendor = cpuVendor();
    zeroCopyMax = vendor == "GenuineIntel" ? std::numeric_limits<int64_t>::max() : int64_t{16} << 20;
    WEFT_INFO(kLogInit, "rank %d: %s CPU: thread ranks send by address up to %s", rank,
              vendor.empty() ? "unknown" : vendor.c_str(),
              zeroCopyMax == std::numeric_limits<int64_t>::max() ? "any size" : "16 MiB");
  }
  context.zeroCopyMax = static_cast<size_t>(zeroCopyMax);
  context.cmaThreshold = cmaWindow.byAddressMinBytes;
  context.cmaMax = cmaWindow.byAddressMaxBytes;
  Result<size_t> cmaSlice = pieceBytes(EnvParam::CmaSlice);
  WEFT_CHECK(cmaSlice.status());
  context.cmaSliceBytes = cmaSlice.value();
  if (std::string tracePath = envString(EnvParam::TraceFile); !tracePath.empty()) {
    context.tracer = std::make_shared<Tracer>(tracePath, rank, nranks);
    WEFT_INFO(kLogInit, "rank %d: tracing collectives to %s", rank, context.tracer->path().c_str());
  }
  context.bindWorker = bindThreads;
  context.workerCpus = rankCpus;
  if (context.bindWorker)
    WEFT_INFO(kLogGraph, "rank %d: worker%s thread bound to NUMA node %d, CPUs %s", rank,
              comm->transports && nNodes > 1 ? " and net proxy" : "", hosts[rank].numa,
              describeCpuSet(context.workerCpus).c_str());
  context.explainTimeout = [comm](const Status& timeout) { return explainTimeout(comm, timeout); };
  if (comm->device) {
    DeviceExecutorConfig deviceConfig;
    deviceConfig.slotBytes = slotBytes.value();
    deviceConfig.llSlotBytes = std::min<size_t>(8192, deviceConfig.slotBytes);
    deviceConfig.llThreshold = std::max<int64_t>(-1, envInt(EnvParam::LlThreshold));
    std::string protocol = envString(EnvParam::DeviceProtocol);
    if (protocol == "simple")
      deviceConfig.forceProtocol = 0;
    else if (protocol == "ll" || protocol == "LL")
      deviceConfig.forceProtocol = 1;
    else if (!protocol.empty())
      return WEFT_ERROR(weftInvalidArgument, "WEFT_DEVICE_PROTOCOL=%s: expected simple, ll or empty", protocol.c_str());
    deviceConfig.samePeerProcess = samePeerProcess;
    // The net bridge moves whole slots (header and payload); LL slots, whose
    // words carry their own flags, stay inside a node.
    if (nNodes > 1 && deviceConfig.forceProtocol != 0) {
      if (deviceConfig.forceProtocol == 1)
        WEFT_WARN("rank %d: WEFT_DEVICE_PROTOCOL=ll is not used across nodes: simple slots there", rank);
      deviceConfig.forceProtocol = 0;
    }
    deviceConfig.stageThroughHost = envInt(EnvParam::P2pDisable) != 0;
    for (const HostInfo& host : hosts) {
      deviceConfig.busIds.emplace_back(host.gpuBusId, strnlen(host.gpuBusId, sizeof(host.gpuBusId)));
      deviceConfig.pids.push_back(host.pid);
    }
    deviceConfig.topo = machine.topo;
    Result<std::unique_ptr<DeviceExecutor>> executor =
        DeviceExecutor::create(context, comm->device, *comm->bootstrap, deviceConfig);
    if (!executor.isOk()) return executor.status();
    comm->executor = executor.take();
  } else {
    comm->executor = std::make_unique<HostExecutor>(context);
  }
  comm->liveTransports = comm->transports.get();
  comm->liveExecutor = comm->executor.get();
  comm->sendCalls.assign(static_cast<size_t>(nranks), 0);
  comm->recvCalls.assign(static_cast<size_t>(nranks), 0);
  faultPoint("init.done", rank);
  WEFT_INFO(kLogInit, "rank %d/%d initialised on %s (pid %d, %d node(s), %zu rank(s) on this one)", rank, nranks,
            comm->device ? format("%s device %d", comm->device->name(), options.cudaDevice).c_str() : "host memory",
            getpid(), nNodes, local.size());
  return Status::ok();
}

}  // namespace

namespace weft {

namespace {

// Init, and on a failure who is to blame; a failed init's executor stopped.
Status initAndExplain(weftComm* comm, int nranks, const weftUniqueId& commId, int rank, const CommOptions& options) {
  Status status = initComm(comm, nranks, commId, rank, options);
  // A wait of init that timed out, or a peer that left in the middle of
  // it (perhaps because a third rank died): who is silent (once the peers'
  // liveness services are known, that is after the bootstrap table).
  if ((status.code() == weftTimeout || status.code() == weftRemoteError) && !comm->livenessAddresses.empty())
    status = explainTimeout(comm, status);
  if (!status.isOk() && comm->executor) comm->executor->stop();
  return status;
}

}  // namespace

Status createComm(weftComm_t* comm, int nranks, const weftUniqueId& commId, int rank, const CommOptions& options) {
  auto created = std::make_unique<weftComm>();
  created->options = options;
  WEFT_CHECK(initAndExplain(created.get(), nranks, commId, rank, options));
  *comm = created.release();
  registerComm(*comm);
  return Status::ok();
}

namespace {

// config.blocking = 0: the communicator is registered at once and
// initialised on a thread of its own; weftCommGetAsyncError reports
// weftInProgress until that is done, then its result.
void startNonBlockingInit(weftComm_t* comm, int nranks, const weftUniqueId& commId, int rank,
                          const CommOptions& options) {
  auto* created = new weftComm();
  created->options = options;
  created->initDone.store(false, std::memory_order_release);
  registerComm(created);
  *comm = created;
  created->initThread = std::thread([created, nranks, commId, rank, options] {
    created->initStatus = initAndExplain(created, nranks, commId, rank, options);
    created->initDone.store(true, std::memory_order_release);
  });
}

}  // namespace

Result<weftUniqueId> freshUniqueId() {
  UniqueIdData data;
  WEFT_CHECK(randomSecret(&data.secret));
  Result<NetInterface> nic = bootstrapInterface();
  if (!nic.isOk()) return nic.status();
  Result<SocketAddress> root = startBootstrapRoot(nic.value().address, data.secret);
  if (!root.isOk()) return root.status();
  data.root = root.value();
  weftUniqueId id;
  encodeUniqueId(data, &id);
  return id;
}

}  // namespace weft

extern "C" {

weftResult_t weftGetVersion(int* version) {
  if (version == nullptr) return setLastError(nullptr, WEFT_ERROR(weftInvalidArgument, "version is NULL"));
  *version = WEFT_VERSION_CODE;
  return weftSuccess;
}

size_t weftTypeSize(weftDataType_t datatype) { return typeSize(datatype); }

weftResult_t weftGetUniqueId(weftUniqueId* uniqueId) {
  if (uniqueId == nullptr) return setLastError(nullptr, WEFT_ERROR(weftInvalidArgument, "uniqueId is NULL"));
  UniqueIdData data;
  if (envIsSet(EnvParam::CommId)) {
    std::string text = envString(EnvParam::CommId);
    Result<SocketAddress> address = parseSocketAddress(text);
    if (!address.isOk())
      return setLastError(nullptr,
                          WEFT_ERROR(weftInvalidArgument, "WEFT_COMM_ID: %s", address.status().message().c_str()));
    data.root = address.value();
    data.secret = secretFromText(text);
    data.rootStartedByRank0 = true;
    encodeUniqueId(data, uniqueId);
    return weftSuccess;
  }
  Result<weftUniqueId> fresh = freshUniqueId();
  if (!fresh.isOk()) return setLastError(nullptr, fresh.status());
  *uniqueId = fresh.value();
  return weftSuccess;
}

weftResult_t weftCommInitRank(weftComm_t* comm, int nranks, weftUniqueId commId, int rank) {
  return weftCommInitRankConfig(comm, nranks, commId, rank, nullptr);
}

weftResult_t weftCommInitRankConfig(weftComm_t* comm, int nranks, weftUniqueId commId, int rank,
                                    const weftConfig_t* config) {
  if (comm == nullptr) return setLastError(nullptr, WEFT_ERROR(weftInvalidArgument, "comm is NULL"));
  *comm = nullptr;
  Result<CommOptions> options = resolveConfig(config);
  if (!options.isOk()) return setLastError(nullptr, options.status());
  if (!options.value().blocking) {
    startNonBlockingInit(comm, nranks, commId, rank, options.value());
    return weftInProgress;
  }
  return setLastError(nullptr, createComm(comm, nranks, commId, rank, options.value()));
}

weftResult_t weftCommDestroy(weftComm_t comm) {
  Status live = checkRegisteredComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  unregisterComm(comm);
  if (comm->initThread.joinable()) comm->initThread.join();  // a non-blocking init ends, or times out
  // Finish what was enqueued; its errors were reported asynchronously.
  if (comm->executor && comm->initStatus.isOk()) {
    (void)comm->executor->wait(comm->executor->submitted());
    comm->executor->stop();
  }
  while (comm->activeCalls.load(std::memory_order_acquire) > 0) usleep(50);
  delete comm;
  return weftSuccess;
}

weftResult_t weftCommAbort(weftComm_t comm) {
  Status live = checkRegisteredComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  // Unregister first: calls that start from now on back out. Then stop the
  // work, wake every waiter, and free only once no call is inside.
  unregisterComm(comm);
  comm->abortFlag = true;
  if (comm->initThread.joinable()) comm->initThread.join();  // its waits see the abort flag
  if (comm->transports)
    comm->transports->reportFatal(comm->rank, weftRemoteError, format("rank %d aborted the communicator", comm->rank));
  if (comm->executor) comm->executor->stop();
  while (comm->activeCalls.load(std::memory_order_acquire) > 0) usleep(50);
  delete comm;
  return weftSuccess;
}

weftResult_t weftCommCount(const weftComm_t comm, int* count) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  if (count == nullptr) return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "count is NULL"));
  *count = comm->nranks;
  return weftSuccess;
}

weftResult_t weftCommUserRank(const weftComm_t comm, int* rank) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  if (rank == nullptr) return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "rank is NULL"));
  *rank = comm->rank;
  return weftSuccess;
}

weftResult_t weftCommGetAsyncError(weftComm_t comm, weftResult_t* asyncError) {
  Status live = checkRegisteredComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  if (asyncError == nullptr) return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "asyncError is NULL"));
  // A non-blocking init: in progress, or its result.
  if (!comm->initDone.load(std::memory_order_acquire)) {
    *asyncError = weftInProgress;
    return weftSuccess;
  }
  if (!comm->initStatus.isOk()) {
    *asyncError = comm->initStatus.code();
    setLastError(comm, comm->initStatus);
    return weftSuccess;
  }
  Status status = comm->executor->asyncError();
  *asyncError = status.code();
  if (!status.isOk()) setLastError(comm, status);
  return weftSuccess;
}

weftResult_t weftCommSynchronize(weftComm_t comm) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  CommCall call(comm);
  if (!call.live()) return setLastError(nullptr, CommCall::abortingError());
  return setLastError(comm, comm->executor->wait(comm->executor->submitted()));
}

weftResult_t weftCommGetSeq(weftComm_t comm, unsigned long long* seq) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  if (seq == nullptr) return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "seq is NULL"));
  *seq = comm->posted;
  return weftSuccess;
}

weftResult_t weftCommWaitSeq(weftComm_t comm, unsigned long long seq) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  CommCall call(comm);
  if (!call.live()) return setLastError(nullptr, CommCall::abortingError());
  if (seq > comm->executor->submitted())
    return setLastError(
        comm,
        WEFT_ERROR(weftInvalidUsage, "rank %d: operation %llu is still inside an open group; call weftGroupEnd first",
                   comm->rank, seq));
  return setLastError(comm, comm->executor->wait(seq));
}

weftResult_t weftCommTestSeq(weftComm_t comm, unsigned long long seq, int* done) {
  Status live = checkLiveComm(comm);
  if (!live.isOk()) return setLastError(nullptr, live);
  if (done == nullptr) return setLastError(comm, WEFT_ERROR(weftInvalidArgument, "done is NULL"));
  *done = seq <= comm->executor->submitted() && comm->executor->test(seq) ? 1 : 0;
  return setLastError(comm, comm->executor->asyncError());
}

}  // extern "C"
