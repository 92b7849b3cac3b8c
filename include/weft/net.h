/*
 * weft's net plugin interface: how bytes travel between nodes.
 *
 * A plugin is a table of functions. weft has two built in ("Socket", TCP;
 * "IB", InfiniBand/RoCE verbs, when built with libibverbs) and loads a third
 * party's from the shared object named by WEFT_NET_PLUGIN, which must export
 * the symbol weftNetPlugin_v1 (a weftNet_v1_t).
 *
 * The model. A receiver listens on a device and gets a handle (opaque bytes,
 * at most WEFT_NET_HANDLE_BYTES) that weft passes to the sender through its
 * own bootstrap; the sender connects with it. Connection set-up never
 * blocks: connect() and accept() return weftSuccess with a NULL comm while
 * the connection is still being made, and are called again. Every
 * connection proves it belongs to the job with the key given to listen()
 * and connect(); a plugin drops (and logs) one that does not.
 *
 * Messages on a connection arrive in the order they were sent: the n-th
 * isend matches the n-th irecv. isend/irecv may return a NULL request when
 * the plugin cannot take more right now; weft retries. test() reports
 * completion and, for a receive, the size actually received (a message
 * larger than the posted receive is an error). Several requests may be in
 * flight per connection (up to maxRecvs in the properties, at least 8).
 *
 * Every function returns weftSuccess, weftSystemError (the network or the
 * OS failed; for a broken connection, a peer that went away) or
 * weftInternalError / weftInvalidArgument (misuse). After an error on a
 * connection weft only closes it.
 */
#ifndef WEFT_NET_H_
#define WEFT_NET_H_

#include <stddef.h>
#include <stdint.h>

#include "weft/weft.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_NET_PLUGIN_VERSION 1
#define WEFT_NET_HANDLE_BYTES 128
#define WEFT_NET_KEY_BYTES 16

/* Where a buffer lives, for regMr and ptrSupport. */
#define WEFT_NET_PTR_HOST 0x1
#define WEFT_NET_PTR_CUDA 0x2

typedef enum { WEFT_NET_LOG_WARN = 1, WEFT_NET_LOG_INFO = 2, WEFT_NET_LOG_TRACE = 3 } weftNetLogLevel_t;
typedef void (*weftNetLogFn_t)(weftNetLogLevel_t level, const char* format, ...);

/* The job's key: every connection must present it. */
typedef struct {
  uint8_t bytes[WEFT_NET_KEY_BYTES];
} weftNetKey_t;

typedef struct {
  char name[64];     /* "eth0", "mlx5_0:1" */
  char pciPath[256]; /* sysfs path of the PCI device, "" when virtual */
  uint64_t guid;
  int ptrSupport; /* WEFT_NET_PTR_* the device can send from/receive into */
  int speedMbps;  /* link speed, 0 when unknown */
  int port;
  int latencyUs; /* 0 when unknown */
  int maxComms;
  int maxRecvs; /* requests in flight per connection */
  int numaNode; /* -1 when unknown */
} weftNetProperties_v1_t;

typedef struct {
  const char* name;
  /* Called once per process before anything else. */
  weftResult_t (*init)(weftNetLogFn_t log);
  weftResult_t (*devices)(int* ndev);
  weftResult_t (*getProperties)(int dev, weftNetProperties_v1_t* props);
  /* handle: WEFT_NET_HANDLE_BYTES to fill for the sender. */
  weftResult_t (*listen)(int dev, const weftNetKey_t* key, void* handle, void** listenComm);
  /* *sendComm stays NULL until the connection is established; call again
   * with the same handle memory, where the plugin may keep its progress. */
  weftResult_t (*connect)(int dev, const weftNetKey_t* key, void* handle, void** sendComm);
  /* *recvComm stays NULL until a connection that presented the key arrived. */
  weftResult_t (*accept)(void* listenComm, void** recvComm);
  weftResult_t (*regMr)(void* comm, void* data, size_t size, int type, void** mhandle);
  weftResult_t (*deregMr)(void* comm, void* mhandle);
  weftResult_t (*isend)(void* sendComm, void* data, size_t size, int tag, void* mhandle, void** request);
  weftResult_t (*irecv)(void* recvComm, void* data, size_t size, int tag, void* mhandle, void** request);
  /* Makes received data visible to the device that will read it (GPU
   * buffers written by RDMA); *request NULL when nothing is needed. */
  weftResult_t (*iflush)(void* recvComm, void* data, size_t size, void* mhandle, void** request);
  weftResult_t (*test)(void* request, int* done, size_t* size);
  weftResult_t (*closeSend)(void* sendComm);
  weftResult_t (*closeRecv)(void* recvComm);
  weftResult_t (*closeListen)(void* listenComm);
  /* Optional (may be NULL): why the last call on a send or receive comm
   * failed, for weft's error message ("connection reset by peer"). */
  void (*errorString)(void* comm, char* text, size_t bytes);
} weftNet_v1_t;

#ifdef __cplusplus
}
#endif

#endif /* WEFT_NET_H_ */
