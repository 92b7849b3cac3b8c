// The communicator behind weftComm_t.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "algorithms/tuner.h"
#include "api/config.h"
#include "bootstrap/bootstrap.h"
#include "bootstrap/liveness.h"
#include "device/runtime.h"
#include "exec/host_executor.h"
#include "transports/transports.h"

namespace weft {
// A buffer registered with weftCommRegister: shareEntry is its entry in the
// node's table of registered buffers (-1: peers of other processes copy it);
// deviceEntry the same in a GPU communicator's table (DeviceExecutor).
struct Registration {
  int shareEntry = -1;
  int deviceEntry = -1;
};

struct PreMulSumOp {
  bool live = false;
  weftDataType_t type = weftFloat32;
  uint64_t scalar = 0;             // the value's bits (weftScalarHostImmediate)
  const void* scalarAt = nullptr;  // read when an operation runs (weftScalarDevice)
};
}  // namespace weft

struct weftComm {
  int rank = 0;
  int nranks = 0;
  weft::CommOptions options;  // from weftConfig_t
  std::unique_ptr<weft::Bootstrap> bootstrap;
  std::unique_ptr<weft::Tuner> tuner;
  std::unique_ptr<weft::Transports> transports;  // null for one rank
  std::unique_ptr<weft::Executor> executor;      // host or device
  // Device communicators: the device's runtime (CUDA or emulated); null for
  // host communicators.
  std::shared_ptr<weft::device::Runtime> device;
  std::atomic<bool> abortFlag{false};
  bool aborted = false;

  // Sequence numbers, assigned when a call is posted (groups included).
  uint64_t posted = 0;
  uint64_t collectiveCalls = 0;
  std::vector<uint64_t> sendCalls, recvCalls;  // per peer
  uint32_t childCalls = 0;                     // weftCommSplit/Shrink calls: tags their bootstrap messages

  std::mutex errorMutex;
  std::string lastError;

  // weftCommRegister's buffers; a handle is the address of its entry.
  std::mutex registrationsMutex;
  std::vector<std::unique_ptr<weft::Registration>> registrations;

  // Ops made by weftRedOpCreatePreMulSum: handle weftNumOps + index.
  std::vector<weft::PreMulSumOp> preMulSums;

  // Each rank's "host:pid" and liveness service (see bootstrap/liveness.h).
  std::vector<std::string> rankHosts;
  std::vector<weft::SocketAddress> livenessAddresses;
  // Set once init has made them: read by the liveness thread.
  std::atomic<weft::Executor*> liveExecutor{nullptr};
  std::atomic<weft::Transports*> liveTransports{nullptr};

  // Calls currently inside the library on this communicator. weftCommAbort
  // (possibly from another thread, to unblock one of them) waits for them to
  // leave before freeing anything.
  std::atomic<int> activeCalls{0};

  // Non-blocking init (config.blocking = 0): the thread running it, and its
  // result once initDone. Calls other than weftCommGetAsyncError,
  // weftCommDestroy and weftCommAbort get weftInProgress until then.
  std::thread initThread;
  std::atomic<bool> initDone{true};
  weft::Status initStatus;  // written before initDone is set

  // Last, so that it is destroyed first: its thread reads the executor.
  std::unique_ptr<weft::LivenessService> liveness;
};

namespace weft {

// The live-communicator registry: calls on a destroyed or never-created
// communicator get weftInvalidArgument instead of touching freed memory.
void registerComm(weftComm* comm);
void unregisterComm(weftComm* comm);
bool isLiveComm(const weftComm* comm);
// weftInvalidArgument for a NULL or not-live communicator, naming it;
// weftInProgress while a non-blocking init runs, and its error after one
// that failed.
Status checkLiveComm(const weftComm* comm);
// Only that it is registered (weftCommDestroy, weftCommAbort and
// weftCommGetAsyncError also take a communicator still initialising).
Status checkRegisteredComm(const weftComm* comm);

// Holds a communicator while a call uses it: counted in activeCalls, and
// re-checked after counting so that a call starting while the communicator
// is being aborted backs out (see weftCommAbort).
class CommCall {
 public:
  explicit CommCall(weftComm* comm);
  ~CommCall();
  bool live() const { return live_; }
  // The error for a call that backed out (see live()).
  static Status abortingError();

 private:
  weftComm* comm_;
  bool live_ = false;
};

// Records status as the last error of comm (or of this thread when comm is
// null) and returns its code.
weftResult_t setLastError(weftComm* comm, const Status& status);

// Makes and registers a communicator (weftCommInitRankConfig without the
// config parsing: splits inherit their parent's options).
Status createComm(weftComm_t* comm, int nranks, const weftUniqueId& commId, int rank, const CommOptions& options);
// A unique id with a new root and secret on this host, whatever WEFT_COMM_ID says.
Result<weftUniqueId> freshUniqueId();

// What this rank tells a peer that asks whether it is alive.
void reportLiveness(weftComm* comm, LivenessReply* reply);
// After a wait timed out: asks every peer at once, and returns the timeout
// naming the ranks that do not answer (host, pid, last completed call) and
// where the others wait.
Status explainTimeout(weftComm* comm, const Status& timeout);

// Posts one operation: inside a group it waits for weftGroupEnd, otherwise
// it is submitted at once. Assigns the operation's sequence number.
weftResult_t postOperation(weftComm* comm, OpDesc op);

// While one lives, the calls this thread posts go to the communicator's
// worker and never run on this thread (OpDesc::background): the bucketer
// posts gradient buckets from the backward pass under one.
class BackgroundPosting {
 public:
  BackgroundPosting();
  ~BackgroundPosting();
  BackgroundPosting(const BackgroundPosting&) = delete;
  BackgroundPosting& operator=(const BackgroundPosting&) = delete;

 private:
  bool previous_;
};
// Reports a refused call (setLastError); inside a group it also fails the
// whole group, which weftGroupEnd then reports without submitting any of it.
weftResult_t rejectCall(weftComm* comm, const Status& status);

}  // namespace weft
