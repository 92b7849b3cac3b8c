#include "core/env.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/logging.h"

namespace weft {
namespace {

const EnvParamInfo kTable[] = {
    {EnvParam::Debug, "WEFT_DEBUG", "WARN", "Log level: NONE, WARN, INFO or TRACE."},
    {EnvParam::DebugSubsys, "WEFT_DEBUG_SUBSYS", "",
     "Comma list of subsystems to log at INFO/TRACE (INIT,COLL,P2P,SHM,BOOT,TUNE,GRAPH,NET,BUCKET,ALL); "
     "a leading ^ excludes the listed ones. Empty means all."},
    {EnvParam::CommId, "WEFT_COMM_ID", "",
     "ip:port (or [ipv6]:port) the bootstrap root listens on; weftGetUniqueId picks one when "
     "unset."},
    {EnvParam::SocketIfname, "WEFT_SOCKET_IFNAME", "",
     "Interfaces for bootstrap sockets: comma list of name prefixes, ^ to exclude, = for exact "
     "names. Default: the first non-loopback interface that is up, else loopback."},
    {EnvParam::SocketFamily, "WEFT_SOCKET_FAMILY", "",
     "AF_INET or AF_INET6 to restrict the interface search to one address family."},
    {EnvParam::Timeout, "WEFT_TIMEOUT", "300",
     "Seconds any wait for a peer may last before the operation fails with weftTimeout "
     "(weftConfig_t.timeoutMs overrides it per communicator)."},
    {EnvParam::Nchannels, "WEFT_NCHANNELS", "0",
     "Channels (independent rings, one host thread each) per collective; 0 lets the tuner "
     "choose."},
    {EnvParam::Algo, "WEFT_ALGO", "",
     "Force an algorithm by name, any case: ring, oneshot, twoshot, tree, direct or hierarchical "
     "(weft-info lists what each builds). A collective the algorithm does not build falls back to "
     "the tuner. Empty lets the tuner choose by its cost model (weft-info --tune prints its choices)."},
    {EnvParam::VerifyPlans, "WEFT_VERIFY_PLANS", "0",
     "1: prove every plan the tuner builds with the plan verifier first (every rank's program, run "
     "symbolically); costs O(ranks^2) per plan built. Always on in Debug builds."},
    {EnvParam::TuneFile, "WEFT_TUNE_FILE", "",
     "The tuner's cost constants ('name = value' lines, as weft-info --calibrate writes them); unset: the shipped "
     "defaults. Ranks use rank 0's."},
    {EnvParam::DeviceTuneFile, "WEFT_DEVICE_TUNE_FILE", "",
     "GPU communicators' cost constants (the device's launch, hand-offs and copy rates, both protocols; as "
     "weft-info --calibrate --device writes them); unset: the shipped defaults of the device (CUDA or emulated). "
     "Ranks use rank 0's."},
    {EnvParam::TraceFile, "WEFT_TRACE_FILE", "",
     "Writes a Chrome-trace (Perfetto) JSON of every collective and send/receive and each of its steps per channel to "
     "this path "
     "when the communicator is destroyed: %r becomes the rank, else '.<rank>' is appended when there are several."},
    {EnvParam::BufferSize, "WEFT_BUFFSIZE", "131072",
     "Bytes in one FIFO slot of the shared-memory transport (the pipelining chunk)."},
    {EnvParam::SiteBufferSize, "WEFT_SITE_BUFFSIZE", "2097152",
     "The FIFO slot of a communicator whose ranks span several sites (WEFT_SITEID), unless WEFT_BUFFSIZE is set: "
     "every slice waits on the site link's latency where it crosses it (the site-grouped all-reduce overlaps "
     "that wait with the next slice's work inside the site, the ring does not), so a long link wants fewer, "
     "larger slices."},
    {EnvParam::Nslots, "WEFT_NSLOTS", "8", "Slots in each shared-memory FIFO (how far a sender may run ahead)."},
    {EnvParam::ZeroCopy, "WEFT_ZERO_COPY", "1",
     "1 lets ranks that are threads of one process read each other's buffers directly for "
     "large messages (one copy instead of two); 0 always copies through the FIFOs. Processes "
     "of one node: see WEFT_CMA."},
    {EnvParam::ZeroCopyThreshold, "WEFT_ZERO_COPY_THRESHOLD", "1048576",
     "Smallest message in bytes that thread ranks send by address (WEFT_ZERO_COPY)."},
    {EnvParam::ZeroCopyMax, "WEFT_ZERO_COPY_MAX", "-1",
     "Largest message sent by address. -1 chooses from the CPU, as measured: 16 MiB on AMD "
     "(beyond the caches the FIFO path, which hands data over cache to cache, was faster), no "
     "limit on Intel (a line from another core's cache costs as much as one from memory there, "
     "and by address saves the copy into the slot)."},
    {EnvParam::Cma, "WEFT_CMA", "1",
     "1 lets ranks that are processes of one node read each other's buffers with cross-memory "
     "attach (process_vm_readv: one copy instead of two) for the messages of copy collectives "
     "(all-gather, broadcast, send/recv, scatter; not gather, whose root reads faster from slots) in "
     "WEFT_CMA_THRESHOLD..WEFT_CMA_MAX, where the kernel allows it between every pair (checked at "
     "init); 0 never."},
    {EnvParam::CmaThreshold, "WEFT_CMA_THRESHOLD", "262144",
     "Smallest message in bytes that processes send by cross-memory attach (WEFT_CMA)."},
    {EnvParam::CmaMax, "WEFT_CMA_MAX", "-1",
     "Largest message in bytes that processes send by cross-memory attach; -1: no limit."},
    {EnvParam::CmaSlice, "WEFT_CMA_SLICE", "4194304",
     "Bytes a copy collective moves per step where every rank is a process of one node and every "
     "message goes by cross-memory attach (no payload passes through a slot then): larger than a "
     "slot, since each read costs a hand-off and a page walk. Every rank must use the same value."},
    {EnvParam::SpinCount, "WEFT_SPIN_COUNT", "-1",
     "Busy-poll iterations (~27 ns each) before a waiting rank yields its core. -1 chooses: 200 "
     "when every rank of the node has a core of its own, 10 when ranks outnumber cores (the peer "
     "being waited for cannot run until someone yields), and a rank whose yields find another "
     "thread wanting its core spins less, down to 10, until they no longer do. A value set here "
     "is used as it is."},
    {EnvParam::HostId, "WEFT_HOSTID", "",
     "Overrides the host identity (hostname plus boot id) that decides which ranks share a "
     "node."},
    {EnvParam::SiteId, "WEFT_SITEID", "",
     "The site (data centre) of this rank's node. Ranks of different sites are joined by a long "
     "link: the ring visits each site's ranks together, and the hierarchical plans group ranks by "
     "site (reduce-scatter inside the site, all-reduce across sites, all-gather inside), so every "
     "byte crosses the site link once. Ranks of one node must name the same site."},
    {EnvParam::TopoFile, "WEFT_TOPO_FILE", "",
     "An hwloc XML export (or weft's own XML) to read the machine from instead of discovering "
     "it live, for communicators and weft-topo (--topo overrides). Unreadable: a warning, and "
     "rings fall back to grouping ranks by NUMA node."},
    {EnvParam::TopoDumpFile, "WEFT_TOPO_DUMP_FILE", "",
     "Where communicators (once per process) and weft-topo write weft's own XML of the machine "
     "(what weft believes; loadable again with --topo)."},
    {EnvParam::Rank, "WEFT_RANK", "", "Perf binaries outside mpirun: this process's rank."},
    {EnvParam::Nranks, "WEFT_NRANKS", "", "Perf binaries outside mpirun: the number of ranks."},
    {EnvParam::NetPlugin, "WEFT_NET_PLUGIN", "",
     "Shared object of a third-party net plugin (exporting weftNetPlugin_v1) to use between "
     "nodes instead of the built-in ones."},
    {EnvParam::Net, "WEFT_NET", "",
     "Force a built-in net plugin: Socket or IB. Empty: IB when a verbs device is usable, "
     "else Socket."},
    {EnvParam::SocketNthreads, "WEFT_SOCKET_NTHREADS", "0",
     "Helper threads per socket connection (0..16); with helpers, messages over 64 KiB are cut "
     "into chunks over WEFT_SOCKET_NTHREADS x WEFT_NSOCKS_PERTHREAD extra TCP streams. 0: one "
     "stream, moved by the proxy thread."},
    {EnvParam::NsocksPerThread, "WEFT_NSOCKS_PERTHREAD", "1",
     "TCP data streams each socket helper thread drives (1..16)."},
    {EnvParam::IbHca, "WEFT_IB_HCA", "",
     "InfiniBand/RoCE devices and ports to use, with the socket syntax: mlx5_0:1,mlx5_1 "
     "prefixes, ^ to exclude, = for exact names."},
    {EnvParam::IbGidIndex, "WEFT_IB_GID_INDEX", "-1",
     "GID index for RoCE; -1 picks a RoCE v2 GID holding an IPv4-mapped address, else one "
     "with IPv6, else index 0."},
    {EnvParam::IbQpsPerConnection, "WEFT_IB_QPS_PER_CONNECTION", "1",
     "Queue pairs per IB connection (1..16); a message is split across them."},
    {EnvParam::AllowSharedGpu, "WEFT_ALLOW_SHARED_GPU", "0",
     "1 lets several ranks of a GPU communicator use one GPU (for testing on one-GPU machines); "
     "0 refuses it, naming both ranks. weftConfig_t.allowSharedGpu overrides."},
    {EnvParam::FaultInject, "WEFT_FAULT_INJECT", "",
     "Testing only: point@rank[:stop] makes that rank kill (or stop) itself at a named fault "
     "point (docs/reliability.md lists them). Empty: no fault."},
    {EnvParam::Device, "WEFT_DEVICE", "",
     "GPU communicators' device: empty for CUDA, \"emulated\" for the emulated device (thread blocks "
     "as host threads over host memory standing in for device memory; ranks in one process)."},
    {EnvParam::DeviceProtocol, "WEFT_DEVICE_PROTOCOL", "",
     "GPU communicators: \"simple\" or \"ll\" forces that protocol for every operation; empty: the tuner "
     "chooses per size class by the device's cost constants (or WEFT_LL_THRESHOLD when set)."},
    {EnvParam::LlThreshold, "WEFT_LL_THRESHOLD", "-1",
     "GPU communicators: operations up to this many bytes use the low-latency protocol, larger ones the simple "
     "one, instead of the tuner's choice; -1: the tuner chooses."},
    {EnvParam::P2pDisable, "WEFT_P2P_DISABLE", "0",
     "GPU communicators: 1 puts the FIFOs between every pair of ranks in host memory both processes map and "
     "both devices reach, instead of the receiver's device memory (which weft chooses already for pairs "
     "without peer access or across CPU sockets)."},
    {EnvParam::NetGdr, "WEFT_NET_GDR", "-1",
     "GPU communicators across nodes: 1 puts the net slots in device memory that the NIC reads and writes "
     "(GPUDirect RDMA) where the net plugin's device takes device memory (the IB plugin: with nvidia_peermem "
     "loaded), 0 stages them through host memory; -1: on with CUDA devices where the NIC allows, off on the "
     "emulated device."},
};
static_assert(sizeof(kTable) / sizeof(kTable[0]) == static_cast<size_t>(EnvParam::Count),
              "every EnvParam needs a row in the table");

}  // namespace

const EnvParamInfo* envParamTable() { return kTable; }

const EnvParamInfo& envParamInfo(EnvParam param) { return kTable[static_cast<int>(param)]; }

bool envIsSet(EnvParam param) {
  const char* value = getenv(envParamInfo(param).name);
  return value != nullptr && value[0] != '\0';
}

EnvParam slotBytesParam(int nSites) {
  return nSites > 1 && !envIsSet(EnvParam::BufferSize) ? EnvParam::SiteBufferSize : EnvParam::BufferSize;
}

std::string envString(EnvParam param) {
  const EnvParamInfo& info = envParamInfo(param);
  const char* value = getenv(info.name);
  return (value != nullptr && value[0] != '\0') ? std::string(value) : std::string(info.defaultValue);
}

bool parseEnvInt(const std::string& text, int64_t* out) {
  if (text.empty() || text.find('\0') != std::string::npos) return false;
  char* end = nullptr;
  errno = 0;
  long long value = strtoll(text.c_str(), &end, 0);
  if (end == text.c_str() || errno == ERANGE) return false;
  int shift = 0;
  switch (*end) {
    case 'k':
    case 'K':
      shift = 10;
      ++end;
      break;
    case 'm':
    case 'M':
      shift = 20;
      ++end;
      break;
    case 'g':
    case 'G':
      shift = 30;
      ++end;
      break;
    default: break;
  }
  if (*end != '\0') return false;
  // A suffix must not overflow: 2^63 / 2^shift bounds the magnitude.
  long long limit = INT64_MAX >> shift;
  if (value > limit || value < -limit) return false;
  *out = value * (1ll << shift);
  return true;
}

int64_t envInt(EnvParam param) {
  const EnvParamInfo& info = envParamInfo(param);
  int64_t fallback = 0;
  parseEnvInt(info.defaultValue, &fallback);
  if (!envIsSet(param)) return fallback;
  int64_t value = 0;
  if (!parseEnvInt(envString(param), &value)) {
    WEFT_WARN("%s=%s is not an integer; using the default %s", info.name, envString(param).c_str(), info.defaultValue);
    return fallback;
  }
  return value;
}

}  // namespace weft
