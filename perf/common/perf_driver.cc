#include "perf_driver.h"

#include <getopt.h>
#if defined(WEFT_HAVE_CUDA)
#include <cuda_runtime.h>
#endif
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "exact_data.h"
#include "exec/copy.h"
#include "weft/weft.h"

#if defined(WEFT_PERF_WITH_MPI)
#include <mpi.h>
#endif

#if defined(WEFT_PERF_WITH_GLOO)
#include <gloo/allreduce.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include <filesystem>
#endif

namespace weft::perf {
namespace {

struct Options {
  size_t minBytes = 32u << 20;
  size_t maxBytes = 32u << 20;
  double stepFactor = 2.0;
  size_t stepBytes = 0;
  int iters = 20;
  int warmup = 5;
  int check = 1;
  std::vector<weftDataType_t> types{weftFloat32};
  std::vector<weftRedOp_t> ops{weftSum};
  int root = 0;
  int threads = 1;
  int compareMpi = 0;
  int bandwidthBound = 0;
  int compareGloo = 0;
  int gpu = 0;              // buffers in device memory, GPU communicators
  int registerBuffers = 0;  // -R 1: weftMemAllocHost buffers, registered with weftCommRegister
  int latency = 0;          // -L 1: each timed call alone, started at one instant on every rank
  int blocking = 0;         // -z 1: each call waited for before the next is made
};

struct Process {
  int rank = 0;  // process index
  int nprocs = 1;
  bool mpi = false;
};

const char* kTypeNames[] = {"int8", "uint8", "int32",  "uint32",   "int64",  "uint64",
                            "half", "float", "double", "bfloat16", "f8e4m3", "f8e5m2"};
const char* kOpNames[] = {"sum", "prod", "max", "min", "avg"};

const char* collName(PerfColl c) {
  static const char* kNames[] = {"all_reduce", "reduce_scatter", "all_gather", "broadcast", "reduce",
                                 "sendrecv",   "alltoall",       "gather",     "scatter"};
  return kNames[static_cast<int>(c)];
}
bool reduces(PerfColl c) { return c == PerfColl::AllReduce || c == PerfColl::ReduceScatter || c == PerfColl::Reduce; }
bool rooted(PerfColl c) {
  return c == PerfColl::Broadcast || c == PerfColl::Reduce || c == PerfColl::Gather || c == PerfColl::Scatter;
}
// Sizes count the whole buffer of n blocks (nccl-tests' convention).
bool perRankBlocks(PerfColl c) {
  return c == PerfColl::ReduceScatter || c == PerfColl::AllGather || c == PerfColl::AllToAll || c == PerfColl::Gather ||
         c == PerfColl::Scatter;
}

// nccl-tests' bus bandwidth factors.
double busFactor(PerfColl c, int n) {
  switch (c) {
    case PerfColl::AllReduce: return 2.0 * (n - 1) / n;
    case PerfColl::ReduceScatter:
    case PerfColl::AllGather:
    case PerfColl::AllToAll:
    case PerfColl::Gather:
    case PerfColl::Scatter: return static_cast<double>(n - 1) / n;
    default: return 1.0;
  }
}

size_t parseSize(const char* text) {
  char* end = nullptr;
  double value = strtod(text, &end);
  switch (*end) {
    case 'K':
    case 'k': value *= 1024; break;
    case 'M':
    case 'm': value *= 1024 * 1024; break;
    case 'G':
    case 'g': value *= 1024.0 * 1024 * 1024; break;
    default: break;
  }
  return static_cast<size_t>(value);
}

void usage(const char* argv0) {
  printf(
      "usage: %s [options]\n"
      "  -b, --minbytes SIZE    smallest size (default 32M; K/M/G suffixes)\n"
      "  -e, --maxbytes SIZE    largest size (default 32M)\n"
      "  -f, --stepfactor F     multiply the size by F each step (default 2)\n"
      "  -i, --stepbytes SIZE   add SIZE each step instead\n"
      "  -n, --iters N          timed iterations per size (default 20)\n"
      "  -w, --warmup_iters N   untimed iterations first (default 5)\n"
      "  -c, --check 0|1        verify results exactly (default 1)\n"
      "  -d, --datatype T       int8 uint8 int32 uint32 int64 uint64 half float double bfloat16\n"
      "                         f8e4m3 f8e5m2, or all (default float)\n"
      "  -o, --op OP            sum prod max min avg, or all (default sum)\n"
      "  -r, --root R           root rank of broadcast/reduce (default 0)\n"
      "  -t, --nthreads N       ranks as threads of each process (default 1)\n"
      "  -C, --compare-mpi 0|1  also time Open MPI's equivalent collective on the same buffers\n"
      "                         (under mpirun, -t 1) and print it beside weft's with the ratio\n"
      "  -G, --compare-gloo 0|1 also time Gloo's all-reduce on the same buffers (TCP on loopback)\n"
      "  -g, --gpu 0|1          GPU communicators (a device per rank, ranks beyond the devices\n"
      "                         sharing them) on buffers of device memory: CUDA managed memory,\n"
      "                         or emulated device 0's with WEFT_DEVICE=emulated\n"
      "  -R, --registered 0|1   host buffers from weftMemAllocHost, registered with weftCommRegister\n"
      "                         (peers of other processes read them directly); with -g, device\n"
      "                         buffers registered\n"
      "  -B, --bound 0|1        measure the memory-bandwidth bound first: every rank copies its\n"
      "                         buffers at once, and the bound algbw of this collective is printed\n"
      "  -L, --latency 0|1      time each call alone: every rank starts it at one agreed instant of\n"
      "                         the real-time clock, and its time runs to the last rank's end (the\n"
      "                         mean over -n calls). Needs clocks that agree: ranks of one host, or\n"
      "                         hosts synchronised far below the call's time. Without it, calls run\n"
      "                         back to back after a barrier, as nccl-tests times them\n"
      "  -z, --blocking 0|1     wait for each call (weftCommSynchronize) before making the next, as\n"
      "                         a blocking torch.distributed call does; without it, calls are made\n"
      "                         back to back and waited for once at the end\n"
      "Ranks: mpirun -np P runs P processes (x -t threads); without mpirun, WEFT_RANK, WEFT_NRANKS\n"
      "and WEFT_COMM_ID (the root address) place this process in a job started by any launcher.\n",
      argv0);
}

bool parseOptions(int argc, char** argv, PerfColl coll, Options* o) {
  static option longOptions[] = {{"minbytes", required_argument, nullptr, 'b'},
                                 {"maxbytes", required_argument, nullptr, 'e'},
                                 {"stepfactor", required_argument, nullptr, 'f'},
                                 {"stepbytes", required_argument, nullptr, 'i'},
                                 {"iters", required_argument, nullptr, 'n'},
                                 {"warmup_iters", required_argument, nullptr, 'w'},
                                 {"check", required_argument, nullptr, 'c'},
                                 {"datatype", required_argument, nullptr, 'd'},
                                 {"op", required_argument, nullptr, 'o'},
                                 {"root", required_argument, nullptr, 'r'},
                                 {"nthreads", required_argument, nullptr, 't'},
                                 {"compare-mpi", required_argument, nullptr, 'C'},
                                 {"bound", required_argument, nullptr, 'B'},
                                 {"compare-gloo", required_argument, nullptr, 'G'},
                                 {"gpu", required_argument, nullptr, 'g'},
                                 {"registered", required_argument, nullptr, 'R'},
                                 {"latency", required_argument, nullptr, 'L'},
                                 {"blocking", required_argument, nullptr, 'z'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  int c;
  while ((c = getopt_long(argc, argv, "b:e:f:i:n:w:c:d:o:r:t:C:B:G:g:R:L:z:h", longOptions, nullptr)) != -1) {
    switch (c) {
      case 'b': o->minBytes = parseSize(optarg); break;
      case 'e': o->maxBytes = parseSize(optarg); break;
      case 'f': o->stepFactor = atof(optarg); break;
      case 'i': o->stepBytes = parseSize(optarg); break;
      case 'n': o->iters = atoi(optarg); break;
      case 'w': o->warmup = atoi(optarg); break;
      case 'c': o->check = atoi(optarg); break;
      case 'r': o->root = atoi(optarg); break;
      case 't': o->threads = atoi(optarg); break;
      case 'C': o->compareMpi = atoi(optarg); break;
      case 'B': o->bandwidthBound = atoi(optarg); break;
      case 'G': o->compareGloo = atoi(optarg); break;
      case 'g': o->gpu = atoi(optarg); break;
      case 'R': o->registerBuffers = atoi(optarg); break;
      case 'L': o->latency = atoi(optarg); break;
      case 'z': o->blocking = atoi(optarg); break;
      case 'd': {
        o->types.clear();
        for (int t = 0; t < weftNumTypes; ++t)
          if (strcmp(optarg, "all") == 0 || strcmp(optarg, kTypeNames[t]) == 0 ||
              (strcmp(optarg, "float32") == 0 && t == weftFloat32) ||
              (strcmp(optarg, "float16") == 0 && t == weftFloat16) ||
              (strcmp(optarg, "float64") == 0 && t == weftFloat64) ||
              (strcmp(optarg, "bf16") == 0 && t == weftBfloat16))
            o->types.push_back(static_cast<weftDataType_t>(t));
        if (o->types.empty()) {
          fprintf(stderr, "unknown datatype '%s'\n", optarg);
          return false;
        }
        break;
      }
      case 'o': {
        o->ops.clear();
        for (int p = 0; p < weftNumOps; ++p)
          if (strcmp(optarg, "all") == 0 || strcmp(optarg, kOpNames[p]) == 0)
            o->ops.push_back(static_cast<weftRedOp_t>(p));
        if (o->ops.empty()) {
          fprintf(stderr, "unknown op '%s'\n", optarg);
          return false;
        }
        break;
      }
      case 'h': usage(argv[0]); exit(0);
      default: usage(argv[0]); return false;
    }
  }
  if (!reduces(coll)) o->ops = {weftSum};
  if (o->iters < 1 || o->warmup < 0 || o->threads < 1 || o->minBytes > o->maxBytes ||
      (o->stepBytes == 0 && o->stepFactor <= 1.0)) {
    fprintf(stderr, "invalid options: need iters >= 1, nthreads >= 1, minbytes <= maxbytes, stepfactor > 1\n");
    return false;
  }
  return true;
}

// Shared by the thread ranks of this process.
struct Shared {
  Options options;
  PerfColl coll;
  Process process;
  int nranks = 1;
  weftUniqueId id{};
  int failures = 0;
};

// A failed call ends the process at once with status 1: with ranks as
// threads another rank may still be inside weft, so exit()'s destructors of
// static objects must not run under it (they did: a crash instead of 1).
#define CHECK_WEFT(comm, call)                                                                        \
  do {                                                                                                \
    weftResult_t r_ = (call);                                                                         \
    if (r_ != weftSuccess) {                                                                          \
      fprintf(stderr, "%s:%d %s failed: %s: %s\n", __FILE__, __LINE__, #call, weftGetErrorString(r_), \
              weftGetLastError(comm));                                                                \
      fflush(nullptr);                                                                                \
      _exit(1);                                                                                       \
    }                                                                                                 \
  } while (0)

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// A job-wide barrier and maximum through weft itself (works for threads and processes alike).
// GPU communicators take device memory only: each rank's scalar for the
// driver's own reductions (null on host communicators).
thread_local double* deviceScalar = nullptr;

double reduceScalar(weftComm_t comm, double value, weftRedOp_t op) {
  double local = value;
  double* result = deviceScalar != nullptr ? deviceScalar : &local;
  *result = value;
  CHECK_WEFT(comm, weftAllReduce(result, result, 1, weftFloat64, op, comm, nullptr));
  CHECK_WEFT(comm, weftCommSynchronize(comm));
  return *result;
}

double maxOverRanks(weftComm_t comm, double value) { return reduceScalar(comm, value, weftMax); }

// Seconds of the real-time clock, which ranks on several hosts can share
// (steady_clock's epoch is each boot's own).
double wallNow() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

// -L: `iters` calls, each started by every rank at one agreed instant and
// timed to the last rank's end; the mean. A barrier leaves its ranks at
// different times, and calls timed from it overlap that skew (a ring's
// chain starts on the ranks that left first), which on slow links can hide
// hops; a common start does not. `maxOf` is the job's maximum of a value
// (an all-reduce), `call` one call to its end on this rank.
template <typename MaxOf, typename Call>
double timeFromCommonStart(int iters, MaxOf maxOf, Call call) {
  // How long an agreement takes on the slowest rank: ranks leave it at most
  // that far apart, so a start that far ahead (doubled) finds all waiting.
  double margin = 0;
  for (int i = 0; i < 3; ++i) {
    double t0 = wallNow();
    maxOf(t0);
    margin = std::max(margin, maxOf(wallNow() - t0));
  }
  margin = 2 * margin + 100e-6;
  double total = 0;
  for (int i = 0; i < iters;) {
    double start = maxOf(wallNow()) + margin;
    bool late = wallNow() > start;
    while (wallNow() < start) std::this_thread::yield();  // ranks may outnumber cores
    call();
    double end = wallNow();
    // A rank that reached the start late says so with an end an hour on.
    double last = maxOf(late ? end + 3600 : end);
    if (last > start + 1800) {
      margin *= 2;  // that call is timed again, further ahead
      continue;
    }
    total += last - start;
    ++i;
  }
  return total / iters;
}
// The job-wide count of wrong elements. Under mpirun (one rank a process)
// MPI sums it, so that a broken weft cannot hide its own errors; thread
// ranks sum through weft, and every rank also fails on its own count.
double sumOverRanks(const Shared& s, weftComm_t comm, double value) {
  double result = value;
#if defined(WEFT_PERF_WITH_MPI)
  if (s.process.mpi && s.options.threads == 1) {
    MPI_Allreduce(&value, &result, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return result;
  }
#endif
  return reduceScalar(comm, result, weftSum);
}

// Device memory the host reads and writes as well: the emulated device's
// (WEFT_DEVICE=emulated), else CUDA managed memory.
void* allocateDeviceMemory(size_t bytes) {
  void* p = nullptr;
  const char* device = getenv("WEFT_DEVICE");
  bool emulated = device != nullptr && strcmp(device, "emulated") == 0;
#if defined(WEFT_HAVE_CUDA)
  if (!emulated) {
    if (cudaMallocManaged(&p, bytes) != cudaSuccess) {
      fprintf(stderr, "cudaMallocManaged of %zu bytes failed\n", bytes);
      fflush(nullptr);
      _exit(1);
    }
    return p;
  }
#endif
  if (!emulated || weftMemAlloc(&p, bytes) != weftSuccess) {
    fprintf(stderr, "-g 1: no device memory (%s)\n",
            emulated ? weftGetLastError(nullptr) : "built without CUDA; set WEFT_DEVICE=emulated");
    fflush(nullptr);
    _exit(1);
  }
  return p;
}
void releaseDeviceMemory(void* p) {
  const char* device = getenv("WEFT_DEVICE");
#if defined(WEFT_HAVE_CUDA)
  if (device == nullptr || strcmp(device, "emulated") != 0) {
    cudaFree(p);
    return;
  }
#endif
  (void)device;
  weftMemFree(p);
}

// A large buffer on huge pages where the kernel allows (THP in madvise
// mode): fewer TLB misses on every pass over it. It starts on a huge-page
// boundary: mmap places a mapping anywhere, and a buffer whose first
// megabytes fell short of the next boundary sat on small pages there, so
// the same size ran on huge pages in one run and on small ones in the
// next (a process_vm_readv of small pages moves half as much). weft and
// the Open MPI comparison use the same buffers. Touched at allocation so
// that no page fault lands inside a timed loop.
class HostBuffer {
 public:
  HostBuffer() = default;
  ~HostBuffer() {
    if (data_ != nullptr && shared_)
      weftMemFree(data_);
    else if (data_ != nullptr && device_)
      releaseDeviceMemory(data_);
    else if (data_ != nullptr)
      munmap(data_, mappedBytes_);
  }
  // Device memory the host can read and write (for -g).
  void assignDevice(size_t bytes, char fill) {
    bytes_ = bytes;
    device_ = true;
    data_ = static_cast<char*>(allocateDeviceMemory(bytes));
    memset(data_, fill, bytes);
  }
  // Host memory peer processes can map (-R 1).
  void assignShared(size_t bytes, char fill) {
    bytes_ = bytes;
    shared_ = true;
    void* p = nullptr;
    if (weftMemAllocHost(&p, bytes) != weftSuccess) {
      fprintf(stderr, "weftMemAllocHost of %zu bytes failed: %s\n", bytes, weftGetLastError(nullptr));
      fflush(nullptr);
      _exit(1);
    }
    data_ = static_cast<char*>(p);
    memset(data_, fill, bytes);
  }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  void assign(size_t bytes, char fill) {
    constexpr size_t kHugePage = 2u << 20;
    bytes_ = bytes;
    mappedBytes_ = (bytes + kHugePage - 1) / kHugePage * kHugePage;
    void* p = mmap(nullptr, mappedBytes_ + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      perror("mmap");
      fflush(nullptr);
      _exit(1);
    }
    // Keep the huge-page-aligned part; give back what lies before and after.
    auto base = reinterpret_cast<uintptr_t>(p);
    uintptr_t aligned = (base + kHugePage - 1) & ~(uintptr_t{kHugePage} - 1);
    if (aligned > base) munmap(p, aligned - base);
    if (base + kHugePage > aligned) munmap(reinterpret_cast<void*>(aligned + mappedBytes_), base + kHugePage - aligned);
    p = reinterpret_cast<void*>(aligned);
    if (getenv("WEFT_PERF_NO_HUGEPAGES") == nullptr) madvise(p, mappedBytes_, MADV_HUGEPAGE);
    data_ = static_cast<char*>(p);
    memset(data_, fill, bytes);
  }
  char* data() { return data_; }
  size_t size() const { return bytes_; }

 private:
  char* data_ = nullptr;
  size_t bytes_ = 0;
  size_t mappedBytes_ = 0;  // assign's mapping: bytes_ up to a whole huge page
  bool device_ = false;
  bool shared_ = false;
};

struct Buffers {
  HostBuffer send, recv;
};

// One call of the collective on this rank.
void launch(weftComm_t comm, PerfColl coll, const char* send, char* recv, size_t count, weftDataType_t type,
            weftRedOp_t op, int root, int rank, int nranks) {
  switch (coll) {
    case PerfColl::AllReduce: CHECK_WEFT(comm, weftAllReduce(send, recv, count, type, op, comm, nullptr)); break;
    case PerfColl::ReduceScatter:
      CHECK_WEFT(comm, weftReduceScatter(send, recv, count, type, op, comm, nullptr));
      break;
    case PerfColl::AllGather: CHECK_WEFT(comm, weftAllGather(send, recv, count, type, comm, nullptr)); break;
    case PerfColl::Broadcast: CHECK_WEFT(comm, weftBroadcast(send, recv, count, type, root, comm, nullptr)); break;
    case PerfColl::Reduce: CHECK_WEFT(comm, weftReduce(send, recv, count, type, op, root, comm, nullptr)); break;
    case PerfColl::AllToAll: CHECK_WEFT(comm, weftAllToAll(send, recv, count, type, comm, nullptr)); break;
    case PerfColl::Gather: CHECK_WEFT(comm, weftGather(send, recv, count, type, root, comm, nullptr)); break;
    case PerfColl::Scatter: CHECK_WEFT(comm, weftScatter(send, recv, count, type, root, comm, nullptr)); break;
    case PerfColl::SendRecv:
      CHECK_WEFT(comm, weftGroupStart());
      CHECK_WEFT(comm, weftSend(send, count, type, (rank + 1) % nranks, comm, nullptr));
      CHECK_WEFT(comm, weftRecv(recv, count, type, (rank + nranks - 1) % nranks, comm, nullptr));
      CHECK_WEFT(comm, weftGroupEnd());
      break;
  }
}

// Pointers for a run: in-place uses the rank's slice as NCCL defines it.
void pointersFor(PerfColl coll, bool inPlace, Buffers& b, size_t count, size_t tb, int rank, const char** send,
                 char** recv) {
  *send = b.send.data();
  *recv = b.recv.data();
  if (!inPlace) return;
  switch (coll) {
    case PerfColl::ReduceScatter:
      *send = b.recv.data();
      *recv = b.recv.data() + rank * count * tb;
      break;
    case PerfColl::AllGather:
    case PerfColl::Gather: *send = b.recv.data() + rank * count * tb; break;
    case PerfColl::Scatter:
      *send = b.recv.data();
      *recv = b.recv.data() + rank * count * tb;
      break;
    default: *send = b.recv.data(); break;
  }
}

// Fills exact inputs, runs once, and counts wrong elements on this rank.
size_t verify(weftComm_t comm, const Shared& s, Buffers& b, bool inPlace, size_t count, weftDataType_t type,
              weftRedOp_t op, int rank) {
  PerfColl coll = s.coll;
  int n = s.nranks;
  size_t tb = weftTypeSize(type);
  const char* send;
  char* recv;
  pointersFor(coll, inPlace, b, count, tb, rank, &send, &recv);
  char* sendMut = const_cast<char*>(send);
  bool manySend = coll == PerfColl::ReduceScatter || coll == PerfColl::AllToAll || coll == PerfColl::Scatter;
  bool manyRecv = coll == PerfColl::AllGather || coll == PerfColl::AllToAll || coll == PerfColl::Gather;
  size_t sendCount = manySend ? count * n : count;
  size_t recvCount = manyRecv || (inPlace && coll == PerfColl::Scatter) ? count * n : count;
  memset(b.recv.data(), 0x5a, recvCount * tb);
  std::vector<char> in = reduces(coll) ? test::inputPeriod(type, op, n, rank) : test::patternPeriod(type, rank);
  bool rootOnly = coll == PerfColl::Broadcast || coll == PerfColl::Scatter;
  if (!rootOnly || rank == s.options.root) test::fillFromPeriod(sendMut, sendCount, 0, in, tb);
  launch(comm, coll, send, recv, count, type, op, s.options.root, rank, n);
  CHECK_WEFT(comm, weftCommSynchronize(comm));
  switch (coll) {
    case PerfColl::AllReduce: return test::countMismatches(recv, count, 0, test::expectedPeriod(type, op, n), tb);
    case PerfColl::ReduceScatter:
      return test::countMismatches(recv, count, rank * count, test::expectedPeriod(type, op, n), tb);
    case PerfColl::AllGather: {
      size_t wrong = 0;
      for (int j = 0; j < n; ++j)
        wrong += test::countMismatches(recv + j * count * tb, count, 0, test::patternPeriod(type, j), tb);
      return wrong;
    }
    case PerfColl::Broadcast:
      return test::countMismatches(recv, count, 0, test::patternPeriod(type, s.options.root), tb);
    case PerfColl::Reduce:
      return rank == s.options.root ? test::countMismatches(recv, count, 0, test::expectedPeriod(type, op, n), tb) : 0;
    case PerfColl::SendRecv:
      return test::countMismatches(recv, count, 0, test::patternPeriod(type, (rank + n - 1) % n), tb);
    case PerfColl::AllToAll:
    case PerfColl::Gather: {
      // Block j came from rank j: its block for this rank, or (gather) its only one.
      if (coll == PerfColl::Gather && rank != s.options.root) return 0;
      size_t first = coll == PerfColl::AllToAll ? rank * count : 0;
      size_t wrong = 0;
      for (int j = 0; j < n; ++j)
        wrong += test::countMismatches(recv + j * count * tb, count, first, test::patternPeriod(type, j), tb);
      return wrong;
    }
    case PerfColl::Scatter:
      return test::countMismatches(recv, count, rank * count, test::patternPeriod(type, s.options.root), tb);
  }
  return 0;
}

// Bytes every rank must read and write per byte of algbw size, at least:
// inputs read once and outputs written once (in host memory shared by all).
double trafficPerAlgByte(PerfColl coll, int n) {
  switch (coll) {
    case PerfColl::AllReduce: return 2.0 * n;      // every rank reads S and writes S
    case PerfColl::ReduceScatter: return n + 1.0;  // every rank reads S, writes S/n
    case PerfColl::AllGather: return n + 1.0;      // every rank reads S/n, writes S
    case PerfColl::Broadcast: return n + 1.0;      // the root reads S, every rank writes S
    case PerfColl::Reduce: return n + 1.0;         // every rank reads S, the root writes S
    case PerfColl::SendRecv: return 2.0 * n;       // every rank reads S and writes S
    case PerfColl::AllToAll: return 2.0 * n;       // every rank reads S and writes S
    case PerfColl::Gather: return 2.0;             // every rank reads S/n, the root writes S
    case PerfColl::Scatter: return 2.0;            // the root reads S, every rank writes S/n
  }
  return 1.0;
}

// All ranks stream-copy their buffers at once: the memory bandwidth the job
// can use together (bytes read + written per second).
double measureCopyBandwidth(weftComm_t comm, Buffers& b, size_t bytes) {
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) {
    maxOverRanks(comm, 0.0);
    double start = now();
    copyStreaming(b.recv.data(), b.send.data(), bytes);  // as the library writes large outputs
    double elapsed = maxOverRanks(comm, now() - start);
    int n = 0;
    weftCommCount(comm, &n);
    best = std::max(best, 2.0 * bytes * n / elapsed);
  }
  return best;
}

double timeWeft(weftComm_t comm, const Shared& s, Buffers& b, bool inPlace, size_t count, weftDataType_t type,
                weftRedOp_t op, int rank) {
  size_t tb = weftTypeSize(type);
  const char* send;
  char* recv;
  pointersFor(s.coll, inPlace, b, count, tb, rank, &send, &recv);
  for (int i = 0; i < s.options.warmup; ++i)
    launch(comm, s.coll, send, recv, count, type, op, s.options.root, rank, s.nranks);
  CHECK_WEFT(comm, weftCommSynchronize(comm));
  if (s.options.latency)
    return timeFromCommonStart(
        s.options.iters, [&](double v) { return maxOverRanks(comm, v); },
        [&] {
          launch(comm, s.coll, send, recv, count, type, op, s.options.root, rank, s.nranks);
          CHECK_WEFT(comm, weftCommSynchronize(comm));
        });
  maxOverRanks(comm, 0.0);  // barrier
  double start = now();
  for (int i = 0; i < s.options.iters; ++i) {
    launch(comm, s.coll, send, recv, count, type, op, s.options.root, rank, s.nranks);
    if (s.options.blocking) CHECK_WEFT(comm, weftCommSynchronize(comm));
  }
  CHECK_WEFT(comm, weftCommSynchronize(comm));
  double elapsed = (now() - start) / s.options.iters;
  return maxOverRanks(comm, elapsed);
}

#if defined(WEFT_PERF_WITH_MPI)
bool mpiType(weftDataType_t type, MPI_Datatype* out) {
  switch (type) {
    case weftInt8: *out = MPI_INT8_T; return true;
    case weftUint8: *out = MPI_UINT8_T; return true;
    case weftInt32: *out = MPI_INT32_T; return true;
    case weftUint32: *out = MPI_UINT32_T; return true;
    case weftInt64: *out = MPI_INT64_T; return true;
    case weftUint64: *out = MPI_UINT64_T; return true;
    case weftFloat32: *out = MPI_FLOAT; return true;
    case weftFloat64: *out = MPI_DOUBLE; return true;
    default: return false;
  }
}
bool mpiOp(weftRedOp_t op, MPI_Op* out) {
  switch (op) {
    case weftSum: *out = MPI_SUM; return true;
    case weftProd: *out = MPI_PROD; return true;
    case weftMax: *out = MPI_MAX; return true;
    case weftMin: *out = MPI_MIN; return true;
    default: return false;
  }
}

// The job's maximum of a value, through MPI.
double mpiMaxOverRanks(double value) {
  double result = 0;
  MPI_Allreduce(&value, &result, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return result;
}

// Open MPI's equivalent of the same call, out-of-place, on the same buffers; <0 when it has none.
double timeMpi(const Shared& s, Buffers& b, size_t count, weftDataType_t type, weftRedOp_t op, int rank) {
  MPI_Datatype dt;
  MPI_Op mop = MPI_SUM;
  if (!mpiType(type, &dt) || (reduces(s.coll) && !mpiOp(op, &mop))) return -1;
  int n = s.nranks;
  int count32 = static_cast<int>(count);
  if (count > static_cast<size_t>(INT32_MAX)) return -1;
  auto once = [&] {
    void* send = b.send.data();
    void* recv = b.recv.data();
    switch (s.coll) {
      case PerfColl::AllReduce: MPI_Allreduce(send, recv, count32, dt, mop, MPI_COMM_WORLD); break;
      case PerfColl::ReduceScatter: MPI_Reduce_scatter_block(send, recv, count32, dt, mop, MPI_COMM_WORLD); break;
      case PerfColl::AllGather: MPI_Allgather(send, count32, dt, recv, count32, dt, MPI_COMM_WORLD); break;
      case PerfColl::Broadcast: MPI_Bcast(recv, count32, dt, s.options.root, MPI_COMM_WORLD); break;
      case PerfColl::Reduce: MPI_Reduce(send, recv, count32, dt, mop, s.options.root, MPI_COMM_WORLD); break;
      case PerfColl::AllToAll: MPI_Alltoall(send, count32, dt, recv, count32, dt, MPI_COMM_WORLD); break;
      case PerfColl::Gather: MPI_Gather(send, count32, dt, recv, count32, dt, s.options.root, MPI_COMM_WORLD); break;
      case PerfColl::Scatter: MPI_Scatter(send, count32, dt, recv, count32, dt, s.options.root, MPI_COMM_WORLD); break;
      case PerfColl::SendRecv:
        MPI_Sendrecv(send, count32, dt, (rank + 1) % n, 0, recv, count32, dt, (rank + n - 1) % n, 0, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
        break;
    }
  };
  for (int i = 0; i < s.options.warmup; ++i) once();
  if (s.options.latency) return timeFromCommonStart(s.options.iters, mpiMaxOverRanks, once);
  MPI_Barrier(MPI_COMM_WORLD);
  double start = now();
  for (int i = 0; i < s.options.iters; ++i) once();
  return mpiMaxOverRanks((now() - start) / s.options.iters);
}
#endif

#if defined(WEFT_PERF_WITH_GLOO)
// A Gloo context over TCP on loopback; its file store lives in a directory
// rank 0 creates and broadcasts with weft, removed once everyone connected.
std::shared_ptr<gloo::Context> makeGlooContext(weftComm_t comm, int rank, int n) {
  char path[256] = {0};
  if (rank == 0) {
    snprintf(path, sizeof(path), "%s/weft-gloo-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(path) == nullptr) path[0] = '\0';
  }
  CHECK_WEFT(comm, weftBroadcast(path, path, sizeof(path), weftInt8, 0, comm, nullptr));
  CHECK_WEFT(comm, weftCommSynchronize(comm));
  if (path[0] == '\0') return nullptr;
  gloo::transport::tcp::attr attr("127.0.0.1");
  auto device = gloo::transport::tcp::CreateDevice(attr);
  gloo::rendezvous::FileStore store(path);
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, n);
  context->connectFullMesh(store, device);
  maxOverRanks(comm, 0.0);  // everyone connected
  if (rank == 0) std::filesystem::remove_all(path);
  return context;
}

template <typename T>
bool glooOptions(gloo::AllreduceOptions& options, Buffers& b, size_t count, weftRedOp_t op) {
  using Fn = void (*)(void*, const void*, const void*, size_t);
  Fn fn = nullptr;
  switch (op) {
    case weftSum: fn = static_cast<Fn>(&gloo::sum<T>); break;
    case weftProd: fn = static_cast<Fn>(&gloo::product<T>); break;
    case weftMax: fn = static_cast<Fn>(&gloo::max<T>); break;
    case weftMin: fn = static_cast<Fn>(&gloo::min<T>); break;
    default: return false;
  }
  options.setInput<T>(reinterpret_cast<T*>(b.send.data()), count);
  options.setOutput<T>(reinterpret_cast<T*>(b.recv.data()), count);
  options.setReduceFunction(fn);
  return true;
}

// Gloo's all-reduce, out-of-place, on the same buffers; <0 when it has no
// equivalent (other collectives, types or ops).
double timeGloo(const std::shared_ptr<gloo::Context>& context, weftComm_t comm, const Shared& s, Buffers& b,
                size_t count, weftDataType_t type, weftRedOp_t op) {
  if (!context || s.coll != PerfColl::AllReduce || count == 0) return -1;
  gloo::AllreduceOptions options(context);
  bool ok = false;
  switch (type) {
    case weftFloat32: ok = glooOptions<float>(options, b, count, op); break;
    case weftFloat64: ok = glooOptions<double>(options, b, count, op); break;
    case weftInt32: ok = glooOptions<int32_t>(options, b, count, op); break;
    case weftInt64: ok = glooOptions<int64_t>(options, b, count, op); break;
    case weftUint8: ok = glooOptions<uint8_t>(options, b, count, op); break;
    case weftInt8: ok = glooOptions<int8_t>(options, b, count, op); break;
    default: break;
  }
  if (!ok) return -1;
  for (int i = 0; i < s.options.warmup; ++i) gloo::allreduce(options);
  maxOverRanks(comm, 0.0);
  double start = now();
  for (int i = 0; i < s.options.iters; ++i) gloo::allreduce(options);
  return maxOverRanks(comm, (now() - start) / s.options.iters);
}
#endif

void rankMain(Shared& s, int thread) {
  int rank = s.process.rank * s.options.threads + thread;
  int n = s.nranks;
  weftComm_t comm = nullptr;
  const Options& o = s.options;
  if (o.gpu) {
    // A device per rank of this process; ranks beyond the devices share them.
    int devices = 1;
#if defined(WEFT_HAVE_CUDA)
    const char* kind = getenv("WEFT_DEVICE");
    if ((kind == nullptr || strcmp(kind, "emulated") != 0) &&
        (cudaGetDeviceCount(&devices) != cudaSuccess || devices < 1))
      devices = 1;
#endif
    // Processes of one node (under mpirun) take the devices in turn, as
    // their threads do.
    auto envCount = [](const char* name, int fallback) {
      const char* value = getenv(name);
      return value != nullptr && atoi(value) >= 0 ? atoi(value) : fallback;
    };
    int localRank = envCount("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    int localSize = std::max(1, envCount("OMPI_COMM_WORLD_LOCAL_SIZE", 1));
    weftConfig_t config = WEFT_CONFIG_INITIALIZER;
    config.cudaDevice = (localRank * o.threads + thread) % devices;
    // More ranks than devices share them; otherwise WEFT_ALLOW_SHARED_GPU
    // decides (processes started without mpirun do not know their neighbours).
    if (localSize * o.threads > devices) config.allowSharedGpu = 1;
#if defined(WEFT_HAVE_CUDA)
    cudaSetDevice(config.cudaDevice);
#endif
    CHECK_WEFT(nullptr, weftCommInitRankConfig(&comm, n, s.id, rank, &config));
    deviceScalar = static_cast<double*>(allocateDeviceMemory(sizeof(double)));
  } else {
    CHECK_WEFT(nullptr, weftCommInitRank(&comm, n, s.id, rank));
  }
  bool print = rank == 0;
  // The baselines and the bound are for host memory.
  bool compare = o.compareMpi && s.process.mpi && o.threads == 1 && !o.gpu;
  bool compareGloo = false;
#if defined(WEFT_PERF_WITH_GLOO)
  std::shared_ptr<gloo::Context> gloo;
  if (o.compareGloo && s.coll == PerfColl::AllReduce && !o.gpu) {
    gloo = makeGlooContext(comm, rank, n);
    compareGloo = gloo != nullptr;
  }
#else
  if (o.compareGloo && print) fprintf(stderr, "note: this perf binary was built without Gloo; -G ignored\n");
#endif
  if (print) {
    const char* kind = getenv("WEFT_DEVICE");
    printf("# weft %s_perf: %d ranks (%d process(es) x %d thread(s)), %s\n", collName(s.coll), n, s.process.nprocs,
           o.threads,
           !o.gpu && o.registerBuffers                        ? "registered host memory (weftMemAllocHost)"
           : !o.gpu                                           ? "host memory"
           : kind != nullptr && strcmp(kind, "emulated") == 0 ? "emulated device memory (WEFT_DEVICE=emulated)"
                                                              : "GPU memory (CUDA managed)");
    printf("#  minBytes %zu maxBytes %zu step: %s %g, warmup iters %d, iters %d, validation %d\n", o.minBytes,
           o.maxBytes, o.stepBytes ? "+" : "x", o.stepBytes ? static_cast<double>(o.stepBytes) : o.stepFactor, o.warmup,
           o.iters, o.check);
    if (o.blocking && !o.latency) printf("# -z: each call waited for before the next is made\n");
    if (o.latency)
      printf(
          "# -L: every time is one call alone, started at one instant on every rank and ended by the last;\n"
          "#   the mean of %d such calls%s\n",
          o.iters, compareGloo ? " (Gloo's calls still run back to back)" : "");
    printf("#\n#%64s%32s%s%s\n", "out-of-place", "in-place", compare ? "          Open MPI (out-of-place)" : "",
           compareGloo ? "             Gloo (out-of-place)" : "");
    printf("#%12s%14s%10s%8s%6s%10s%9s%9s%7s%10s%9s%9s%7s%s%s\n", "size", "count", "type", "redop", "root", "time",
           "algbw", "busbw", "#wrong", "time", "algbw", "busbw", "#wrong",
           compare ? "      time     algbw     busbw  mpi/weft" : "",
           compareGloo ? "      time     algbw     busbw gloo/weft" : "");
    printf("#%12s%14s%10s%8s%6s%10s%9s%9s%7s%10s%9s%9s%7s%s%s\n", "(B)", "(elements)", "", "", "", "(us)", "(GB/s)",
           "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "", compare ? "      (us)    (GB/s)    (GB/s)   (time)" : "",
           compareGloo ? "      (us)    (GB/s)    (GB/s)   (time)" : "");
  }
  // Buffers sized once for the largest message and touched now, so no page
  // faults land inside the timed loop.
  size_t maxTypeBytes = 1;
  for (auto t : o.types) maxTypeBytes = std::max(maxTypeBytes, weftTypeSize(t));
  size_t maxBytes = std::max(o.maxBytes, maxTypeBytes * n);
  Buffers b;
  if (o.gpu) {
    b.send.assignDevice(maxBytes + 64, 1);
    b.recv.assignDevice(maxBytes + 64, 2);
  } else if (o.registerBuffers) {
    b.send.assignShared(maxBytes + 64, 1);
    b.recv.assignShared(maxBytes + 64, 2);
  } else {
    b.send.assign(maxBytes + 64, 1);
    b.recv.assign(maxBytes + 64, 2);
  }
  void* registrations[2] = {nullptr, nullptr};
  if (o.registerBuffers) {
    CHECK_WEFT(comm, weftCommRegister(comm, b.send.data(), b.send.size(), &registrations[0]));
    CHECK_WEFT(comm, weftCommRegister(comm, b.recv.data(), b.recv.size(), &registrations[1]));
  }
  if (o.bandwidthBound && o.gpu && print)
    printf("# -B: the memory-bandwidth bound is for host memory; gpu_bandwidth measures the device's\n");
  if (o.bandwidthBound && !o.gpu) {
    double bandwidth = measureCopyBandwidth(comm, b, o.maxBytes);
    double bound = bandwidth / trafficPerAlgByte(s.coll, n) / 1e9;
    if (print)
      printf(
          "# memory-bandwidth bound: %d ranks copying %zu bytes each at once move %.2f GB/s (read+write);\n"
          "#   at best %s moves %.1f bytes of memory per byte of size, so algbw <= %.2f GB/s\n",
          n, o.maxBytes, bandwidth / 1e9, collName(s.coll), trafficPerAlgByte(s.coll, n), bound);
  }
  double busSum = 0;
  int busCount = 0;
  long long wrongTotal = 0;
  bool localWrong = false;  // this rank's own count, whatever the sum says
  for (weftDataType_t type : o.types) {
    for (weftRedOp_t op : o.ops) {
      size_t tb = weftTypeSize(type);
      for (size_t bytes = o.minBytes; bytes <= o.maxBytes;
           bytes = o.stepBytes ? bytes + o.stepBytes : std::max(bytes + 1, static_cast<size_t>(bytes * o.stepFactor))) {
        bool perRank = perRankBlocks(s.coll);
        size_t count = bytes / tb / (perRank ? n : 1);
        size_t totalBytes = count * tb * (perRank ? n : 1);
        double t[2];
        long long wrong[2] = {0, 0};
        // Sending and receiving through one buffer races (undefined in NCCL
        // too), so send/recv has no in-place run.
        int placements = s.coll == PerfColl::SendRecv ? 1 : 2;
        t[1] = 0;
        for (int inPlace = 0; inPlace < placements; ++inPlace) {
          t[inPlace] = timeWeft(comm, s, b, inPlace, count, type, op, rank);
          if (o.check) {
            size_t mine = verify(comm, s, b, inPlace, count, type, op, rank);
            if (mine != 0) localWrong = true;
            wrong[inPlace] = static_cast<long long>(sumOverRanks(s, comm, static_cast<double>(mine)));
          }
          wrongTotal += wrong[inPlace];
        }
        double mpiTime = -1, glooTime = -1;
#if defined(WEFT_PERF_WITH_MPI)
        if (compare) mpiTime = timeMpi(s, b, count, type, op, rank);
#endif
#if defined(WEFT_PERF_WITH_GLOO)
        if (compareGloo) glooTime = timeGloo(gloo, comm, s, b, count, type, op);
#endif
        if (print) {
          double algbw[2], busbw[2];
          for (int k = 0; k < 2; ++k) {
            algbw[k] = t[k] > 0 ? totalBytes / t[k] / 1e9 : 0;
            busbw[k] = algbw[k] * busFactor(s.coll, n);
            if (t[k] > 0) {
              busSum += busbw[k];
              ++busCount;
            }
          }
          // Times under 10 us get a third decimal: small-message latencies
          // differ in hundredths of a microsecond.
          auto timeFormat = [](double seconds) { return seconds * 1e6 < 10 ? "%10.3f" : "%10.2f"; };
          printf(" %12zu%14zu%10s%8s%6d", totalBytes, count * (perRank ? n : 1), kTypeNames[type],
                 reduces(s.coll) ? kOpNames[op] : "none", rooted(s.coll) ? o.root : -1);
          printf(timeFormat(t[0]), t[0] * 1e6);
          printf("%9.2f%9.2f%7lld", algbw[0], busbw[0], o.check ? wrong[0] : -1);
          if (t[1] > 0) {
            printf(timeFormat(t[1]), t[1] * 1e6);
            printf("%9.2f%9.2f%7lld", algbw[1], busbw[1], o.check ? wrong[1] : -1);
          } else
            printf("%10s%9s%9s%7s", "n/a", "", "", "");
          // A baseline's time, algbw, busbw and its time over weft's.
          auto printBaseline = [&](double seconds, const char* missing) {
            if (seconds <= 0) {
              printf("%40s", missing);
              return;
            }
            double alg = totalBytes / seconds / 1e9;
            printf(timeFormat(seconds), seconds * 1e6);
            printf("%10.2f%10.2f%10.2f", alg, alg * busFactor(s.coll, n), seconds / t[0]);
          };
          if (compare) printBaseline(mpiTime, "n/a (no MPI type/op)");
          if (compareGloo) printBaseline(glooTime, "n/a (no Gloo type/op)");
          printf("\n");
          fflush(stdout);
        }
      }
    }
  }
  if (print) {
    printf("# Out of bounds values : %lld %s\n", wrongTotal, wrongTotal == 0 ? "OK" : "FAILED");
    printf("# Avg bus bandwidth    : %g\n#\n", busCount ? busSum / busCount : 0.0);
  }
  if (wrongTotal != 0 || localWrong) s.failures = 1;
  if (deviceScalar != nullptr) releaseDeviceMemory(deviceScalar);
  deviceScalar = nullptr;
  for (void* registration : registrations)
    if (registration != nullptr) CHECK_WEFT(comm, weftCommDeregister(comm, registration));
  CHECK_WEFT(comm, weftCommDestroy(comm));
}

}  // namespace

int perfMain(int argc, char** argv, PerfColl coll) {
  Shared s;
  s.coll = coll;
  if (!parseOptions(argc, argv, coll, &s.options)) return 2;
  bool underMpi =
      getenv("OMPI_COMM_WORLD_SIZE") != nullptr || getenv("PMI_SIZE") != nullptr || getenv("PMIX_RANK") != nullptr;
#if defined(WEFT_PERF_WITH_MPI)
  if (underMpi) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &s.process.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &s.process.nprocs);
    s.process.mpi = true;
  }
#else
  if (underMpi && getenv("WEFT_NRANKS") == nullptr) {
    fprintf(stderr, "this perf binary was built without MPI; use WEFT_RANK/WEFT_NRANKS/WEFT_COMM_ID instead\n");
    return 2;
  }
#endif
  if (!s.process.mpi && getenv("WEFT_NRANKS") != nullptr) {
    // Started by another launcher: every process derives the same id from WEFT_COMM_ID.
    if (getenv("WEFT_RANK") == nullptr || getenv("WEFT_COMM_ID") == nullptr) {
      fprintf(stderr, "WEFT_NRANKS needs WEFT_RANK and WEFT_COMM_ID too\n");
      return 2;
    }
    s.process.rank = atoi(getenv("WEFT_RANK"));
    s.process.nprocs = atoi(getenv("WEFT_NRANKS"));
  }
  s.nranks = s.process.nprocs * s.options.threads;
  if (s.options.root < 0 || s.options.root >= s.nranks) {
    fprintf(stderr, "root %d is outside [0, %d)\n", s.options.root, s.nranks);
    return 2;
  }
  if (s.options.compareMpi && !(s.process.mpi && s.options.threads == 1) && s.process.rank == 0)
    fprintf(stderr, "note: -C 1 compares with Open MPI only under mpirun with -t 1; skipping the comparison\n");
  if (s.process.rank == 0 || getenv("WEFT_COMM_ID") != nullptr) CHECK_WEFT(nullptr, weftGetUniqueId(&s.id));
#if defined(WEFT_PERF_WITH_MPI)
  if (s.process.mpi) MPI_Bcast(&s.id, sizeof(s.id), MPI_BYTE, 0, MPI_COMM_WORLD);
#endif
  std::vector<std::thread> threads;
  for (int t = 1; t < s.options.threads; ++t) threads.emplace_back(rankMain, std::ref(s), t);
  rankMain(s, 0);
  for (auto& thread : threads) thread.join();
#if defined(WEFT_PERF_WITH_MPI)
  if (s.process.mpi) {
    int failed = s.failures, anyFailed = 0;
    MPI_Allreduce(&failed, &anyFailed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    s.failures = anyFailed;
    MPI_Finalize();
  }
#endif
  return s.failures ? 1 : 0;
}

}  // namespace weft::perf
