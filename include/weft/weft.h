/*
 * weft — collective communication for training and inference programs.
 *
 * Plain C API, shaped like NCCL's so that code written against one reads
 * naturally against the other. Every call returns a weftResult_t; on an error
 * weftGetLastError() gives a sentence naming the argument, the rank and what
 * to do about it.
 *
 * Host communicators (created by weftCommInitRank) work on host memory: the
 * stream argument must be NULL, collectives are enqueued on the
 * communicator's host queue, run asynchronously and complete in call order.
 * weftCommSynchronize() waits for everything enqueued so far.
 */
#ifndef WEFT_WEFT_H_
#define WEFT_WEFT_H_

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libweft.so is built with hidden visibility: what this header declares is
 * its whole interface, and the only thing it exports. */
#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#define WEFT_MAJOR 0
#define WEFT_MINOR 1
#define WEFT_PATCH 0
/* weftGetVersion() returns WEFT_VERSION_CODE: major*10000 + minor*100 + patch. */
#define WEFT_VERSION_CODE (WEFT_MAJOR * 10000 + WEFT_MINOR * 100 + WEFT_PATCH)

typedef struct weftComm* weftComm_t;
/* A cudaStream_t for GPU communicators, NULL for host ones. */
typedef void* weftStream_t;

#define WEFT_UNIQUE_ID_BYTES 128
/* The root's address and a random job secret; broadcast it to every rank. */
typedef struct {
  char internal[WEFT_UNIQUE_ID_BYTES];
} weftUniqueId;

typedef enum {
  weftSuccess = 0,
  weftUnhandledCudaError = 1,
  weftSystemError = 2,
  weftInternalError = 3,
  weftInvalidArgument = 4,
  weftInvalidUsage = 5,
  weftRemoteError = 6,
  weftInProgress = 7,
  weftTimeout = 8,
  weftNumResults = 9
} weftResult_t;

typedef enum {
  weftInt8 = 0,
  weftChar = 0,
  weftUint8 = 1,
  weftInt32 = 2,
  weftInt = 2,
  weftUint32 = 3,
  weftInt64 = 4,
  weftUint64 = 5,
  weftFloat16 = 6,
  weftHalf = 6,
  weftFloat32 = 7,
  weftFloat = 7,
  weftFloat64 = 8,
  weftDouble = 8,
  weftBfloat16 = 9,
  weftFloat8e4m3 = 10,
  weftFloat8e5m2 = 11,
  weftNumTypes = 12
} weftDataType_t;

typedef enum { weftSum = 0, weftProd = 1, weftMax = 2, weftMin = 3, weftAvg = 4, weftNumOps = 5 } weftRedOp_t;

/* A reduction op made on a communicator: PreMulSum multiplies each rank's
 * input by that rank's scalar (in the datatype's arithmetic, rounded once)
 * before summing, as NCCL's does. The scalar is read when the op is created
 * (weftScalarHostImmediate) or each time an operation using it runs
 * (weftScalarDevice: *scalar must stay valid; on a host communicator it is
 * host memory). Usable with the communicator's all-reduce, reduce-scatter and
 * reduce of that datatype, on every rank alike (a rank that sums where
 * another pre-multiplies gets a mismatch error). */
typedef enum { weftScalarDevice = 0, weftScalarHostImmediate = 1 } weftScalarResidence_t;
weftResult_t weftRedOpCreatePreMulSum(weftRedOp_t* op, void* scalar, weftDataType_t datatype,
                                      weftScalarResidence_t residence, weftComm_t comm);
weftResult_t weftRedOpDestroy(weftRedOp_t op, weftComm_t comm);

/* Version and errors. */
weftResult_t weftGetVersion(int* version);
const char* weftGetErrorString(weftResult_t result);
/* The last error recorded on comm (or, with comm == NULL, on this thread). */
const char* weftGetLastError(weftComm_t comm);

/* Communicator life cycle. */
weftResult_t weftGetUniqueId(weftUniqueId* uniqueId);
weftResult_t weftCommInitRank(weftComm_t* comm, int nranks, weftUniqueId commId, int rank);

/* Communicator options, NCCL-style: declare with the initializer, set the
 * fields you need, pass to weftCommInitRankConfig. Fields left unset take
 * their defaults; the header lets later versions add fields. */
#define WEFT_CONFIG_UNDEF_INT (-2147483647 - 1)
#define WEFT_CONFIG_MAGIC 0x77656674u /* "weft" */
typedef struct {
  size_t size;          /* set by WEFT_CONFIG_INITIALIZER */
  unsigned int magic;   /* set by WEFT_CONFIG_INITIALIZER */
  unsigned int version; /* set by WEFT_CONFIG_INITIALIZER */
  /* The CUDA device this rank's buffers live on; unset or -1: a host
   * communicator. */
  int cudaDevice;
  /* 1 (default): calls return once the work is enqueued, init once the
   * communicator is formed. 0: init returns weftInProgress at once with the
   * communicator made, and forms it in the background;
   * weftCommGetAsyncError reports weftInProgress until it is formed (then
   * weftSuccess or init's error), and other calls on it return
   * weftInProgress until then. weftCommDestroy and weftCommAbort take it
   * at any time. */
  int blocking;
  /* Most channels a collective may use, 1..16; unset: what the topology
   * search picks (WEFT_NCHANNELS still sets the count, within this cap). */
  int maxChannels;
  /* 1: several ranks may use one GPU (for testing; the default refuses it,
   * naming both ranks). Unset: WEFT_ALLOW_SHARED_GPU. */
  int allowSharedGpu;
  /* How long (milliseconds) a wait on a peer may make no progress before the
   * operation fails with weftTimeout; unset: WEFT_TIMEOUT seconds. */
  int timeoutMs;
} weftConfig_t;
#define WEFT_CONFIG_INITIALIZER                                                                               \
  {                                                                                                           \
    sizeof(weftConfig_t), WEFT_CONFIG_MAGIC, WEFT_VERSION_CODE, WEFT_CONFIG_UNDEF_INT, WEFT_CONFIG_UNDEF_INT, \
        WEFT_CONFIG_UNDEF_INT, WEFT_CONFIG_UNDEF_INT, WEFT_CONFIG_UNDEF_INT                                   \
  }
/* config may be NULL (all defaults). */
weftResult_t weftCommInitRankConfig(weftComm_t* comm, int nranks, weftUniqueId commId, int rank,
                                    const weftConfig_t* config);
/* New communicators from an existing one (NCCL's semantics).
 * weftCommSplit: every rank of comm calls it; ranks of one color form a new
 * communicator, ordered by key (ties by their rank in comm); a rank passing
 * WEFT_SPLIT_NOCOLOR gets *newcomm = NULL. config NULL: comm's own options.
 * weftCommShrink: the ranks of comm not in excludeRanks (all of them, each
 * with the same list) form a new communicator, in their order in comm; the
 * excluded ranks, dead or alive, do not call it. For survivors of a failed
 * rank: comm may have failed; destroy or abort it afterwards. */
#define WEFT_SPLIT_NOCOLOR (-1)
weftResult_t weftCommSplit(weftComm_t comm, int color, int key, weftComm_t* newcomm, const weftConfig_t* config);
weftResult_t weftCommShrink(weftComm_t comm, const int* excludeRanks, int excludeCount, weftComm_t* newcomm,
                            const weftConfig_t* config);
/* Waits for enqueued work, then frees every resource. */
weftResult_t weftCommDestroy(weftComm_t comm);
/* Stops enqueued work without waiting (peers see a remote error), then frees. */
weftResult_t weftCommAbort(weftComm_t comm);
weftResult_t weftCommCount(const weftComm_t comm, int* count);
weftResult_t weftCommUserRank(const weftComm_t comm, int* rank);
/* weftSuccess, or the error that stopped asynchronous work on comm. */
weftResult_t weftCommGetAsyncError(weftComm_t comm, weftResult_t* asyncError);
/* Waits for all work enqueued on comm; returns its first error. */
weftResult_t weftCommSynchronize(weftComm_t comm);

/* Memory of the device GPU communicators use: cudaMalloc on the current
 * CUDA device, or, with WEFT_DEVICE=emulated, emulated device 0's memory
 * (host memory the emulated device knows as its own). A GPU communicator
 * refuses buffers that are not memory of its device. */
weftResult_t weftMemAlloc(void** ptr, size_t size);
/* Host memory that the other processes of the node can map (a shared
 * memory file per allocation). Registered with weftCommRegister, a buffer
 * in it is read by a peer process directly, as thread ranks read each
 * other's buffers, instead of being copied through shared-memory FIFOs. */
weftResult_t weftMemAllocHost(void** ptr, size_t size);
/* Frees memory of weftMemAlloc or weftMemAllocHost. */
weftResult_t weftMemFree(void* ptr);

/* Registers [buff, buff + size) for use in comm's operations (NCCL's user
 * buffer registration; local, not collective). On a host communicator a
 * buffer inside weftMemAllocHost memory is then published to the ranks of
 * other processes of the node, which map it and read it directly in any
 * collective whose message is at least WEFT_ZERO_COPY_THRESHOLD bytes;
 * other memory is accepted and keeps the copy paths. Deregister before
 * freeing the memory, and never while an operation using it is enqueued. */
weftResult_t weftCommRegister(weftComm_t comm, void* buff, size_t size, void** handle);
weftResult_t weftCommDeregister(weftComm_t comm, void* handle);

/* Per-operation completion (what the C++ work handles sit on). Every call
 * posted on comm gets the next sequence number; weftCommGetSeq returns the
 * latest. Operations complete in order, so waiting for seq waits for all
 * before it. Inside an open group they complete only after weftGroupEnd. */
weftResult_t weftCommGetSeq(weftComm_t comm, unsigned long long* seq);
weftResult_t weftCommWaitSeq(weftComm_t comm, unsigned long long seq);
/* *done = 1 when seq has completed; returns the communicator's async error. */
weftResult_t weftCommTestSeq(weftComm_t comm, unsigned long long seq, int* done);

/* Collectives. In-place when sendbuff == recvbuff (for all-gather and
 * reduce-scatter: when the rank's slice of the larger buffer is the other). */
weftResult_t weftAllReduce(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, weftRedOp_t op,
                           weftComm_t comm, weftStream_t stream);
weftResult_t weftReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, weftDataType_t datatype,
                               weftRedOp_t op, weftComm_t comm, weftStream_t stream);
weftResult_t weftAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, weftDataType_t datatype,
                           weftComm_t comm, weftStream_t stream);
weftResult_t weftBroadcast(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, int root,
                           weftComm_t comm, weftStream_t stream);
weftResult_t weftReduce(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, weftRedOp_t op,
                        int root, weftComm_t comm, weftStream_t stream);

/* All-to-all: sendbuff holds nranks blocks of count elements, block j for
 * rank j; recvbuff receives block i from rank i (MPI_Alltoall's layout).
 * In place when sendbuff == recvbuff. */
weftResult_t weftAllToAll(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, weftComm_t comm,
                          weftStream_t stream);
/* All-to-all with a count and a displacement (in elements) per peer, as in
 * MPI_Alltoallv: sendcounts[j] elements from sendbuff + sdispls[j] go to rank
 * j, and recvcounts[i] elements from rank i land at recvbuff + rdispls[i].
 * Each array has nranks entries. Rank i's sendcounts[j] must equal rank j's
 * recvcounts[i]; a mismatch is reported by the receiving rank, naming both
 * counts. The send and receive regions must not overlap (no in-place form). */
weftResult_t weftAllToAllv(const void* sendbuff, const size_t* sendcounts, const size_t* sdispls, void* recvbuff,
                           const size_t* recvcounts, const size_t* rdispls, weftDataType_t datatype, weftComm_t comm,
                           weftStream_t stream);
/* Gather: every rank's count elements into block i of the root's recvbuff
 * (nranks x count; other ranks may pass NULL). In place at the root when
 * sendbuff == recvbuff + root * count. */
weftResult_t weftGather(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, int root,
                        weftComm_t comm, weftStream_t stream);
/* Scatter: block i of the root's sendbuff (nranks x count; other ranks may
 * pass NULL) to rank i's recvbuff. In place at the root when recvbuff ==
 * sendbuff + root * count. */
weftResult_t weftScatter(const void* sendbuff, void* recvbuff, size_t count, weftDataType_t datatype, int root,
                         weftComm_t comm, weftStream_t stream);

/* Point to point. Inside a group, sends and receives may be posted in any order. */
weftResult_t weftSend(const void* sendbuff, size_t count, weftDataType_t datatype, int peer, weftComm_t comm,
                      weftStream_t stream);
weftResult_t weftRecv(void* recvbuff, size_t count, weftDataType_t datatype, int peer, weftComm_t comm,
                      weftStream_t stream);

/* Groups: operations between Start and End are launched together at End. */
weftResult_t weftGroupStart(void);
weftResult_t weftGroupEnd(void);

/* Size in bytes of one element of datatype, or 0 for an invalid type. */
size_t weftTypeSize(weftDataType_t datatype);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // WEFT_WEFT_H_
