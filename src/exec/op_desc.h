// What the executors run: one operation as posted (its buffers, count and
// type, the plan that says how), and what a rank's executor works with.
// Shared by the host executor and the parts of it that other executors
// reuse (call matching, geometry).
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "algorithms/plan.h"
#include "core/status.h"
#include "exec/trace.h"
#include "transports/transports.h"

namespace weft {

struct OpDesc {
  Collective collective = Collective::AllReduce;
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;
  weftDataType_t type = weftFloat32;
  weftRedOp_t op = weftSum;
  // weftRedOpCreatePreMulSum's op: the input is multiplied by the scalar
  // (scalarAt's value when set, read as the operation starts; else
  // preMulScalar's bits) before a sum.
  bool preMulSum = false;
  uint64_t preMulScalar = 0;
  const void* preMulScalarAt = nullptr;
  int root = -1;
  int peer = -1;               // send/recv
  uint64_t opSeq = 0;          // collectives: index among this comm's collectives; p2p: per-peer index
  const Plan* plan = nullptr;  // collectives; owned by the communicator's tuner
  bool lastInGroup = true;     // the operations up to this one run together
  // Always the worker's, never run on the posting thread however small (a
  // gradient bucket posted from the backward pass: that thread has compute
  // to get back to, and must not wait there for a peer that is behind).
  bool background = false;
  // Device communicators: the stream (cudaStream_t) the operation is
  // ordered on; NULL for host communicators.
  void* stream = nullptr;
  // Device communicators: the tuner chose the LL protocol for this call.
  bool lowLatency = false;
};

struct ExecutorContext {
  int rank = 0;
  int nranks = 1;
  Transports* transports = nullptr;  // null when nranks == 1
  const std::atomic<bool>* abortFlag = nullptr;
  uint64_t timeoutNanos = 0;
  uint64_t spinCount = 2000;
  bool adaptiveSpin = false;  // spinCount is the most; waits that share a core spin less (SpinBudget)
  int maxChannels = 1;
  // Large messages between thread ranks move by address (WEFT_ZERO_COPY).
  bool zeroCopy = true;
  size_t zeroCopyThreshold = 1u << 20;
  size_t zeroCopyMax = 16u << 20;
  // Messages of copy collectives between processes of one node move by
  // cross-memory attach in these sizes, where the transport allows it (it
  // does not under WEFT_CMA=0).
  size_t cmaThreshold = 256u << 10;
  size_t cmaMax = SIZE_MAX;
  size_t cmaSliceBytes = 4u << 20;  // per step, where every message of a call goes by cross-memory attach
  // WEFT_TRACE_FILE's recorder; null when off.
  std::shared_ptr<Tracer> tracer;
  // CPUs the worker thread is bound to (the rank's NUMA node); empty: unbound.
  cpu_set_t workerCpus;
  bool bindWorker = false;

  // Turns a timeout, or a connection that broke, into the error a user can
  // act on (who is silent, where everyone waits); runs on the thread that
  // failed. Empty: as it is.
  std::function<Status(const Status& timeout)> explainTimeout;

  // Whether a message of this many bytes goes by address (between ranks
  // that share a process, which the caller checks).
  bool sendsByAddress(size_t bytes) const { return zeroCopy && bytes >= zeroCopyThreshold && bytes <= zeroCopyMax; }
  // Whether a message of this many bytes of a collective that reduces
  // nothing goes by cross-memory attach (between processes that allow it,
  // which the caller checks).
  bool copiesByAddress(size_t bytes) const { return bytes >= cmaThreshold && bytes <= cmaMax; }
};

}  // namespace weft
