// The InfiniBand / RoCE net plugin on libibverbs.
//
// A connection is 1..WEFT_IB_QPS_PER_CONNECTION reliable-connected queue
// pairs sharing one completion queue, set up over a TCP socket that carries
// each side's proof of the job key (challenge-response, see ib_logic.h) and
// its queue pair numbers, LIDs and GIDs.
//
// Data moves receiver-driven: irecv() writes an entry (address, rkey, size,
// sequence) into the sender's FIFO with an RDMA write; isend() waits for the
// entry of its sequence number, then RDMA-writes the message straight into
// the receiver's buffer, split over the queue pairs, each piece with an
// immediate (the message size) that completes a receive posted for it.
//
// NOT RUN ON HARDWARE: the machines this was written on have no HCA. The
// device-free parts (ib_logic.h) are unit-tested; this file is compiled and
// its no-device path (fall back to sockets) is tested.
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bootstrap/bootstrap.h"
#include "bootstrap/unique_id.h"
#include "core/env.h"
#include "core/logging.h"
#include "core/socket.h"
#include "topology/nic_speed.h"
#include "transports/net/ib/ib_logic.h"
#include "transports/net/net_plugin.h"

namespace weft {
namespace {

// Whether the GPU driver's peer-memory module is loaded, so that the HCA can
// register (pin and map) GPU memory with ibv_reg_mr: GPUDirect RDMA.
bool gpuPeerMemory() {
  static const bool loaded =
      access("/sys/module/nvidia_peermem", F_OK) == 0 || access("/sys/module/nv_peer_mem", F_OK) == 0;
  return loaded;
}

using ib::Hello;
using ib::QpInfo;

constexpr int kFifoDepth = 64;  // receives a connection may have posted ahead
constexpr uint32_t kHandleMagic = 0x57494848;

struct FifoEntry {
  uint64_t addr;
  uint32_t rkey;
  uint32_t size;
  uint64_t seq;  // written last; the sender waits for its own sequence number
  uint64_t pad;
};

struct Device {
  std::string name;
  int port = 1;
  ibv_context* context = nullptr;
  ibv_pd* pd = nullptr;
  ibv_port_attr portAttr{};
  int gidIndex = 0;
  std::unique_ptr<ib::MrCache> mrCache;
  std::mutex mutex;  // the cache
  weftNetProperties_v1_t props{};
};

std::mutex gMutex;
std::vector<std::unique_ptr<Device>> gDevices;
bool gInitialized = false;

struct Handle {
  uint32_t magic;
  uint32_t pad;
  uint64_t listenId;
  WireAddress address;
  void* state;  // the connecting side's progress
};
static_assert(sizeof(Handle) <= WEFT_NET_HANDLE_BYTES, "handle fits");

struct Request;

struct Comm {
  Device* device = nullptr;
  bool isSend = false;
  int nQps = 1;
  ibv_cq* cq = nullptr;
  std::vector<ibv_qp*> qps;
  // Sender: the FIFO the receiver writes into. Receiver: a local entry to
  // write from, and where the sender's FIFO is.
  FifoEntry* fifo = nullptr;
  ibv_mr* fifoMr = nullptr;
  uint64_t remoteFifo = 0;
  uint32_t remoteFifoRkey = 0;
  uint64_t seq = 0;
  bool failed = false;
  std::string error;
  std::vector<std::unique_ptr<Request>> pool;
};

struct Request {
  Comm* comm = nullptr;
  int pending = 0;  // completions still expected
  size_t size = 0;
  bool used = false;
};

void* registerMr(Device* device, void* base, size_t bytes) {
  return ibv_reg_mr(device->pd, base, bytes, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
}

Status createQps(Comm* comm) {
  Device* device = comm->device;
  comm->cq = ibv_create_cq(device->context, 2 * kFifoDepth * (comm->nQps + 1), nullptr, nullptr, 0);
  if (comm->cq == nullptr)
    return WEFT_ERROR(weftSystemError, "ibv_create_cq on %s: %s", device->name.c_str(), strerror(errno));
  for (int q = 0; q < comm->nQps; ++q) {
    ibv_qp_init_attr init{};
    init.send_cq = comm->cq;
    init.recv_cq = comm->cq;
    init.qp_type = IBV_QPT_RC;
    init.cap.max_send_wr = 2 * kFifoDepth;
    init.cap.max_recv_wr = kFifoDepth;
    init.cap.max_send_sge = 1;
    init.cap.max_recv_sge = 1;
    init.cap.max_inline_data = sizeof(FifoEntry);
    ibv_qp* qp = ibv_create_qp(device->pd, &init);
    if (qp == nullptr)
      return WEFT_ERROR(weftSystemError, "ibv_create_qp on %s: %s", device->name.c_str(), strerror(errno));
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_INIT;
    attr.pkey_index = 0;
    attr.port_num = static_cast<uint8_t>(device->port);
    attr.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_LOCAL_WRITE;
    if (ibv_modify_qp(qp, &attr, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS) != 0)
      return WEFT_ERROR(weftSystemError, "queue pair to INIT on %s: %s", device->name.c_str(), strerror(errno));
    comm->qps.push_back(qp);
  }
  comm->fifo = static_cast<FifoEntry*>(aligned_alloc(4096, sizeof(FifoEntry) * kFifoDepth));
  memset(comm->fifo, 0, sizeof(FifoEntry) * kFifoDepth);
  comm->fifoMr = static_cast<ibv_mr*>(registerMr(device, comm->fifo, sizeof(FifoEntry) * kFifoDepth));
  if (comm->fifoMr == nullptr) return WEFT_ERROR(weftSystemError, "ibv_reg_mr of the FIFO: %s", strerror(errno));
  return Status::ok();
}

void describeQps(Comm* comm, Hello* hello) {
  hello->nQps = static_cast<uint32_t>(comm->nQps);
  hello->fifoAddr = reinterpret_cast<uint64_t>(comm->fifo);
  hello->fifoRkey = comm->fifoMr->rkey;
  for (int q = 0; q < comm->nQps; ++q) {
    QpInfo& info = hello->qps[q];
    info.qpn = comm->qps[q]->qp_num;
    info.psn = 0;
    info.lid = comm->device->portAttr.lid;
    info.linkLayer = comm->device->portAttr.link_layer;
    info.mtu = static_cast<uint8_t>(comm->device->portAttr.active_mtu);
    ibv_gid gid{};
    ibv_query_gid(comm->device->context, static_cast<uint8_t>(comm->device->port), comm->device->gidIndex, &gid);
    memcpy(info.gid, gid.raw, 16);
  }
}

Status connectQps(Comm* comm, const Hello& remote) {
  if (static_cast<int>(remote.nQps) != comm->nQps)
    return WEFT_ERROR(weftInternalError, "peer has %u queue pairs, this side %d (WEFT_IB_QPS_PER_CONNECTION differs?)",
                      remote.nQps, comm->nQps);
  comm->remoteFifo = remote.fifoAddr;
  comm->remoteFifoRkey = remote.fifoRkey;
  for (int q = 0; q < comm->nQps; ++q) {
    const QpInfo& info = remote.qps[q];
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_RTR;
    attr.path_mtu = static_cast<ibv_mtu>(std::min<int>(info.mtu, comm->device->portAttr.active_mtu));
    attr.dest_qp_num = info.qpn;
    attr.rq_psn = info.psn;
    attr.max_dest_rd_atomic = 1;
    attr.min_rnr_timer = 12;
    if (info.linkLayer == IBV_LINK_LAYER_ETHERNET) {
      attr.ah_attr.is_global = 1;
      memcpy(attr.ah_attr.grh.dgid.raw, info.gid, 16);
      attr.ah_attr.grh.sgid_index = static_cast<uint8_t>(comm->device->gidIndex);
      attr.ah_attr.grh.hop_limit = 255;
    } else {
      attr.ah_attr.dlid = info.lid;
    }
    attr.ah_attr.port_num = static_cast<uint8_t>(comm->device->port);
    if (ibv_modify_qp(comm->qps[q], &attr,
                      IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
                          IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER) != 0)
      return WEFT_ERROR(weftSystemError, "queue pair to RTR: %s", strerror(errno));
    attr = ibv_qp_attr{};
    attr.qp_state = IBV_QPS_RTS;
    attr.timeout = 18;
    attr.retry_cnt = 7;
    attr.rnr_retry = 7;
    attr.sq_psn = 0;
    attr.max_rd_atomic = 1;
    if (ibv_modify_qp(comm->qps[q], &attr,
                      IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN |
                          IBV_QP_MAX_QP_RD_ATOMIC) != 0)
      return WEFT_ERROR(weftSystemError, "queue pair to RTS: %s", strerror(errno));
  }
  return Status::ok();
}

void destroyComm(Comm* comm) {
  for (ibv_qp* qp : comm->qps) ibv_destroy_qp(qp);
  if (comm->cq != nullptr) ibv_destroy_cq(comm->cq);
  if (comm->fifoMr != nullptr) ibv_dereg_mr(comm->fifoMr);
  free(comm->fifo);
  delete comm;
}

int qpsPerConnection() {
  return static_cast<int>(std::clamp<int64_t>(envInt(EnvParam::IbQpsPerConnection), 1, ib::kMaxQps));
}

// ---- plugin functions ----------------------------------------------------

weftResult_t ibInit(weftNetLogFn_t) {
  std::lock_guard<std::mutex> lock(gMutex);
  if (gInitialized) return weftSuccess;
  gInitialized = true;
  int n = 0;
  errno = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (list == nullptr || n == 0) {
    WEFT_INFO(kLogNet | kLogInit, "IB net: no InfiniBand/RoCE device (ibv_get_device_list: %s); using sockets",
              list == nullptr ? strerror(errno) : "no devices");
    if (list != nullptr) ibv_free_device_list(list);
    return weftSuccess;  // zero devices
  }
  std::string filter = envString(EnvParam::IbHca);
  for (int d = 0; d < n; ++d) {
    ibv_context* context = ibv_open_device(list[d]);
    if (context == nullptr) continue;
    ibv_device_attr deviceAttr{};
    if (ibv_query_device(context, &deviceAttr) != 0) {
      ibv_close_device(context);
      continue;
    }
    bool used = false;
    for (int port = 1; port <= deviceAttr.phys_port_cnt; ++port) {
      ibv_port_attr portAttr{};
      if (ibv_query_port(context, static_cast<uint8_t>(port), &portAttr) != 0) continue;
      if (portAttr.state != IBV_PORT_ACTIVE) continue;
      std::string name = ibv_get_device_name(list[d]);
      if (!ib::hcaMatches(filter, name, port)) continue;
      auto device = std::make_unique<Device>();
      device->name = name;
      device->port = port;
      device->context = context;
      device->portAttr = portAttr;
      device->pd = ibv_alloc_pd(context);
      if (device->pd == nullptr) continue;
      std::string portDir = "/sys/class/infiniband/" + name + "/ports/" + std::to_string(port);
      device->gidIndex = portAttr.link_layer == IBV_LINK_LAYER_ETHERNET
                             ? ib::chooseGidIndex(portDir, static_cast<int>(envInt(EnvParam::IbGidIndex)))
                             : 0;
      Device* raw = device.get();
      device->mrCache =
          std::make_unique<ib::MrCache>([raw](void* base, size_t bytes) { return registerMr(raw, base, bytes); },
                                        [](void* handle) { ibv_dereg_mr(static_cast<ibv_mr*>(handle)); });
      weftNetProperties_v1_t& p = device->props;
      snprintf(p.name, sizeof(p.name), "%s:%d", name.c_str(), port);
      char real[PATH_MAX];
      if (realpath(("/sys/class/infiniband/" + name + "/device").c_str(), real) != nullptr) {
        size_t len = std::min(strlen(real), sizeof(p.pciPath) - 1);
        memcpy(p.pciPath, real, len);
        p.pciPath[len] = '\0';
      }
      p.guid = deviceAttr.node_guid;
      p.port = port;
      p.speedMbps = verbsPortSpeedMbps(portAttr.active_speed, portAttr.active_width);
      p.ptrSupport = WEFT_NET_PTR_HOST | (gpuPeerMemory() ? WEFT_NET_PTR_CUDA : 0);
      p.maxComms = 65536;
      p.maxRecvs = kFifoDepth;
      std::ifstream numa("/sys/class/infiniband/" + name + "/device/numa_node");
      p.numaNode = -1;
      numa >> p.numaNode;
      WEFT_INFO(kLogNet, "IB net: device %zu is %s (%s, %d Mb/s, GID index %d)", gDevices.size(), p.name,
                portAttr.link_layer == IBV_LINK_LAYER_ETHERNET ? "RoCE" : "InfiniBand", p.speedMbps, device->gidIndex);
      gDevices.push_back(std::move(device));
      used = true;
    }
    if (!used) ibv_close_device(context);
  }
  ibv_free_device_list(list);
  if (gDevices.empty())
    WEFT_INFO(kLogNet | kLogInit, "IB net: no active port matches WEFT_IB_HCA='%s'; using sockets", filter.c_str());
  return weftSuccess;
}

weftResult_t ibDevices(int* ndev) {
  std::lock_guard<std::mutex> lock(gMutex);
  *ndev = static_cast<int>(gDevices.size());
  return weftSuccess;
}

weftResult_t ibGetProperties(int dev, weftNetProperties_v1_t* props) {
  std::lock_guard<std::mutex> lock(gMutex);
  if (dev < 0 || dev >= static_cast<int>(gDevices.size())) return weftInvalidArgument;
  *props = gDevices[dev]->props;
  return weftSuccess;
}

struct ListenComm {
  Device* device;
  int fd;
  weftNetKey_t key;
  uint64_t listenId;
  int pendingFd = -1;
  uint8_t nonce[ib::kNonceBytes] = {0};  // the challenge sent to the pending connection
  Hello hello{};
  size_t got = 0;
};

weftResult_t ibListen(int dev, const weftNetKey_t* key, void* handleBytes, void** listenComm) {
  Result<NetInterface> nic = bootstrapInterface();
  if (!nic.isOk()) return weftSystemError;
  SocketAddress address = nic.value().address, bound;
  address.setPort(0);
  Result<Socket> sock = Socket::listen(address, &bound);
  if (!sock.isOk()) return weftSystemError;
  auto* comm = new ListenComm();
  comm->device = gDevices[dev].get();
  comm->fd = sock.value().release();
  comm->key = *key;
  Status random = randomBytes(&comm->listenId, sizeof(comm->listenId));
  if (!random.isOk()) {
    WEFT_WARN("IB net: %s", random.message().c_str());
    ::close(comm->fd);
    delete comm;
    return weftSystemError;
  }
  Handle handle{};
  handle.magic = kHandleMagic;
  handle.listenId = comm->listenId;
  handle.address = toWire(bound);
  memset(handleBytes, 0, WEFT_NET_HANDLE_BYTES);
  memcpy(handleBytes, &handle, sizeof(handle));
  *listenComm = comm;
  return weftSuccess;
}

struct ConnectState {
  int fd = -1;
  Comm* comm = nullptr;
  uint8_t challenge[ib::kNonceBytes] = {0};  // the accepting side's nonce
  size_t challengeGot = 0;
  uint8_t key[16] = {0};
  Hello mine{}, theirs{};
  size_t sent = 0, got = 0;
};

bool pump(int fd, void* data, size_t bytes, size_t* done, bool send) {
  while (*done < bytes) {
    ssize_t n = send ? ::send(fd, static_cast<char*>(data) + *done, bytes - *done, MSG_NOSIGNAL)
                     : ::recv(fd, static_cast<char*>(data) + *done, bytes - *done, 0);
    if (n > 0)
      *done += static_cast<size_t>(n);
    else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == EINPROGRESS))
      return true;
    else
      return false;
  }
  return true;
}

weftResult_t ibConnect(int dev, const weftNetKey_t* key, void* handleBytes, void** sendComm) {
  *sendComm = nullptr;
  auto* handle = static_cast<Handle*>(handleBytes);
  if (handle->magic != kHandleMagic) return weftInvalidArgument;
  auto* state = static_cast<ConnectState*>(handle->state);
  if (state == nullptr) {
    state = new ConnectState();
    handle->state = state;
    state->comm = new Comm();
    state->comm->device = gDevices[dev].get();
    state->comm->isSend = true;
    state->comm->nQps = qpsPerConnection();
    Status created = createQps(state->comm);
    if (!created.isOk()) {
      WEFT_WARN("IB net: %s", created.message().c_str());
      return weftSystemError;
    }
    state->mine.magic = ib::kHelloMagic;
    state->mine.listenId = handle->listenId;
    memcpy(state->key, key->bytes, sizeof(state->key));
    if (!randomBytes(state->mine.nonce, sizeof(state->mine.nonce)).isOk()) return weftSystemError;
    describeQps(state->comm, &state->mine);
    SocketAddress address = fromWire(handle->address);
    state->fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (::connect(state->fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0 &&
        errno != EINPROGRESS)
      return weftSystemError;
  }
  // The accepting side's challenge first; the hello answers it.
  if (state->challengeGot < ib::kNonceBytes) {
    if (!pump(state->fd, state->challenge, ib::kNonceBytes, &state->challengeGot, false)) return weftSystemError;
    if (state->challengeGot < ib::kNonceBytes) return weftSuccess;
    ib::helloMac(state->mine, state->key, state->challenge, false, state->mine.mac);
  }
  if (!pump(state->fd, &state->mine, sizeof(Hello), &state->sent, true)) return weftSystemError;
  if (state->sent < sizeof(Hello)) return weftSuccess;
  if (!pump(state->fd, &state->theirs, sizeof(Hello), &state->got, false)) return weftSystemError;
  if (state->got < sizeof(Hello)) return weftSuccess;
  // The reply must prove the key too, answering this side's nonce.
  std::string why = ib::checkHello(state->theirs, state->key, state->mine.nonce, true, handle->listenId);
  Status connected = why.empty() ? connectQps(state->comm, state->theirs)
                                 : WEFT_ERROR(weftRemoteError, "the accepting side: %s", why.c_str());
  ::close(state->fd);
  Comm* comm = state->comm;
  delete state;
  handle->state = nullptr;
  if (!connected.isOk()) {
    WEFT_WARN("IB net: %s", connected.message().c_str());
    destroyComm(comm);
    return weftSystemError;
  }
  *sendComm = comm;
  return weftSuccess;
}

weftResult_t ibAccept(void* listenCommPtr, void** recvComm) {
  *recvComm = nullptr;
  auto* l = static_cast<ListenComm*>(listenCommPtr);
  if (l->pendingFd < 0) {
    l->pendingFd = ::accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (l->pendingFd < 0) return weftSuccess;
    l->got = 0;
    // A fresh socket's buffer takes the challenge at once.
    if (!randomBytes(l->nonce, sizeof(l->nonce)).isOk() ||
        ::send(l->pendingFd, l->nonce, sizeof(l->nonce), MSG_NOSIGNAL | MSG_DONTWAIT) !=
            static_cast<ssize_t>(sizeof(l->nonce))) {
      WEFT_WARN("IB net: dropped a connection: its challenge could not be sent");
      ::close(l->pendingFd);
      l->pendingFd = -1;
      return weftSuccess;
    }
  }
  if (!pump(l->pendingFd, &l->hello, sizeof(Hello), &l->got, false) || l->got < sizeof(Hello)) {
    if (l->got < sizeof(Hello) && errno != EAGAIN && errno != EWOULDBLOCK) {
      ::close(l->pendingFd);
      l->pendingFd = -1;
    }
    return weftSuccess;
  }
  std::string why = ib::checkHello(l->hello, l->key.bytes, l->nonce, false, l->listenId);
  if (!why.empty()) {
    WEFT_WARN("IB net: dropped a connection: %s", why.c_str());
    ::close(l->pendingFd);
    l->pendingFd = -1;
    return weftSuccess;
  }
  auto* comm = new Comm();
  comm->device = l->device;
  comm->nQps = static_cast<int>(l->hello.nQps);
  Status status = createQps(comm);
  if (status.isOk()) status = connectQps(comm, l->hello);
  Hello mine{};
  mine.magic = ib::kHelloMagic;
  mine.listenId = l->listenId;
  if (status.isOk()) describeQps(comm, &mine);
  ib::helloMac(mine, l->key.bytes, l->hello.nonce, true, mine.mac);
  // Small: it fits the socket buffer of a fresh connection.
  size_t sent = 0;
  for (int tries = 0; status.isOk() && sent < sizeof(Hello) && tries < 1000; ++tries)
    if (!pump(l->pendingFd, &mine, sizeof(Hello), &sent, true)) break;
  ::close(l->pendingFd);
  l->pendingFd = -1;
  if (!status.isOk() || sent < sizeof(Hello)) {
    WEFT_WARN("IB net: accepting a connection failed: %s", status.isOk() ? "hello not sent" : status.message().c_str());
    destroyComm(comm);
    return weftSystemError;
  }
  *recvComm = comm;
  return weftSuccess;
}

weftResult_t ibRegMr(void* commPtr, void* data, size_t size, int type, void** mhandle) {
  // Device memory registers like host memory once the GPU driver's
  // peer-memory module lets the HCA pin it (getProperties says so).
  if (type != WEFT_NET_PTR_HOST && !(type == WEFT_NET_PTR_CUDA && gpuPeerMemory())) return weftInvalidArgument;
  Device* device = static_cast<Comm*>(commPtr)->device;
  std::lock_guard<std::mutex> lock(device->mutex);
  *mhandle = device->mrCache->acquire(data, size);
  return *mhandle != nullptr ? weftSuccess : weftSystemError;
}

weftResult_t ibDeregMr(void* commPtr, void* mhandle) {
  Device* device = static_cast<Comm*>(commPtr)->device;
  std::lock_guard<std::mutex> lock(device->mutex);
  device->mrCache->release(mhandle);
  return weftSuccess;
}

Request* newRequest(Comm* comm) {
  for (auto& r : comm->pool)
    if (!r->used) {
      r->used = true;
      return r.get();
    }
  comm->pool.push_back(std::make_unique<Request>());
  comm->pool.back()->used = true;
  comm->pool.back()->comm = comm;
  return comm->pool.back().get();
}

weftResult_t ibIsend(void* commPtr, void* data, size_t size, int, void* mhandle, void** request) {
  auto* comm = static_cast<Comm*>(commPtr);
  *request = nullptr;
  volatile FifoEntry* slot = &comm->fifo[comm->seq % kFifoDepth];
  if (slot->seq != comm->seq + 1) return weftSuccess;  // the receiver has not posted it yet
  if (size > slot->size) {
    comm->failed = true;
    comm->error = format("a %zu-byte message for a %u-byte receive", size, slot->size);
    return weftInternalError;
  }
  Request* r = newRequest(comm);
  r->pending = comm->nQps;
  r->size = size;
  auto* mr = static_cast<ibv_mr*>(mhandle);
  std::vector<ib::Chunk> chunks = ib::splitAcrossQps(size, comm->nQps);
  for (int q = 0; q < comm->nQps; ++q) {
    ibv_sge sge{};
    sge.addr = reinterpret_cast<uint64_t>(data) + chunks[q].offset;
    sge.length = static_cast<uint32_t>(chunks[q].bytes);
    sge.lkey = mr->lkey;
    ibv_send_wr wr{}, *bad = nullptr;
    wr.wr_id = reinterpret_cast<uint64_t>(r);
    wr.opcode = IBV_WR_RDMA_WRITE_WITH_IMM;
    wr.send_flags = IBV_SEND_SIGNALED;
    wr.sg_list = chunks[q].bytes > 0 ? &sge : nullptr;
    wr.num_sge = chunks[q].bytes > 0 ? 1 : 0;
    wr.imm_data = htonl(static_cast<uint32_t>(size));
    wr.wr.rdma.remote_addr = slot->addr + chunks[q].offset;
    wr.wr.rdma.rkey = slot->rkey;
    if (ibv_post_send(comm->qps[q], &wr, &bad) != 0) {
      comm->failed = true;
      comm->error = format("ibv_post_send: %s", strerror(errno));
      return weftSystemError;
    }
  }
  ++comm->seq;
  *request = r;
  return weftSuccess;
}

weftResult_t ibIrecv(void* commPtr, void* data, size_t size, int, void* mhandle, void** request) {
  auto* comm = static_cast<Comm*>(commPtr);
  *request = nullptr;
  Request* r = newRequest(comm);
  r->pending = comm->nQps;
  for (int q = 0; q < comm->nQps; ++q) {
    ibv_recv_wr wr{}, *bad = nullptr;
    wr.wr_id = reinterpret_cast<uint64_t>(r);
    if (ibv_post_recv(comm->qps[q], &wr, &bad) != 0) {
      comm->failed = true;
      comm->error = format("ibv_post_recv: %s", strerror(errno));
      return weftSystemError;
    }
  }
  // Tell the sender where this message goes.
  FifoEntry& entry = comm->fifo[comm->seq % kFifoDepth];
  entry.addr = reinterpret_cast<uint64_t>(data);
  entry.rkey = static_cast<ibv_mr*>(mhandle)->rkey;
  entry.size = static_cast<uint32_t>(size);
  entry.seq = comm->seq + 1;
  ibv_sge sge{reinterpret_cast<uint64_t>(&entry), sizeof(FifoEntry), comm->fifoMr->lkey};
  ibv_send_wr wr{}, *bad = nullptr;
  wr.wr_id = 0;  // its completion is only checked for errors
  wr.opcode = IBV_WR_RDMA_WRITE;
  wr.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE;
  wr.sg_list = &sge;
  wr.num_sge = 1;
  wr.wr.rdma.remote_addr = comm->remoteFifo + (comm->seq % kFifoDepth) * sizeof(FifoEntry);
  wr.wr.rdma.rkey = comm->remoteFifoRkey;
  if (ibv_post_send(comm->qps[0], &wr, &bad) != 0) {
    comm->failed = true;
    comm->error = format("ibv_post_send (FIFO entry): %s", strerror(errno));
    return weftSystemError;
  }
  ++comm->seq;
  *request = r;
  return weftSuccess;
}

weftResult_t ibIflush(void*, void*, size_t, void*, void** request) {
  // Host memory: nothing to flush. Device memory (GPUDirect RDMA): the
  // transport then asks the GPU to flush the NIC's writes itself
  // (cudaDeviceFlushGPUDirectRDMAWrites), so no read-back is posted here.
  *request = nullptr;
  return weftSuccess;
}

weftResult_t ibTest(void* requestPtr, int* done, size_t* size) {
  auto* r = static_cast<Request*>(requestPtr);
  Comm* comm = r->comm;
  *done = 0;
  ibv_wc wcs[16];
  int n = ibv_poll_cq(comm->cq, 16, wcs);
  if (n < 0) {
    comm->failed = true;
    comm->error = "ibv_poll_cq failed";
  }
  for (int i = 0; i < n; ++i) {
    if (wcs[i].status != IBV_WC_SUCCESS) {
      comm->failed = true;
      comm->error =
          format("work completion error: %s (the peer died or the link went down)", ibv_wc_status_str(wcs[i].status));
      continue;
    }
    if (wcs[i].wr_id == 0) continue;
    auto* done_r = reinterpret_cast<Request*>(wcs[i].wr_id);
    if (wcs[i].opcode == IBV_WC_RECV_RDMA_WITH_IMM) done_r->size = ntohl(wcs[i].imm_data);
    --done_r->pending;
  }
  if (r->pending > 0) return comm->failed ? weftSystemError : weftSuccess;
  *done = 1;
  if (size != nullptr) *size = r->size;
  r->used = false;
  return weftSuccess;
}

weftResult_t ibCloseComm(void* comm) {
  if (comm != nullptr) destroyComm(static_cast<Comm*>(comm));
  return weftSuccess;
}

weftResult_t ibCloseListen(void* listenComm) {
  auto* l = static_cast<ListenComm*>(listenComm);
  if (l == nullptr) return weftSuccess;
  if (l->pendingFd >= 0) ::close(l->pendingFd);
  ::close(l->fd);
  delete l;
  return weftSuccess;
}

void ibErrorString(void* comm, char* text, size_t bytes) {
  snprintf(text, bytes, "%s", comm ? static_cast<Comm*>(comm)->error.c_str() : "");
}

const weftNet_v1_t kIbPlugin = {
    "IB",    ibInit,  ibDevices, ibGetProperties, ibListen,    ibConnect,   ibAccept,      ibRegMr,       ibDeregMr,
    ibIsend, ibIrecv, ibIflush,  ibTest,          ibCloseComm, ibCloseComm, ibCloseListen, ibErrorString,
};

}  // namespace

const weftNet_v1_t* ibNetPlugin() { return &kIbPlugin; }

}  // namespace weft
