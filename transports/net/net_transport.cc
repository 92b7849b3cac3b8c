#include "transports/net/net_transport.h"

#include "bootstrap/handshake.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <cstdlib>

#include "core/clock.h"
#include "core/logging.h"

namespace weft {
namespace {

constexpr size_t kHeaderLine = 64;               // the slot header's line on the wire
constexpr uint32_t kTagNetHandles = 0x4e455400;  // "NET\0"
// A connector its owner drove this recently is left to its owner.
constexpr uint64_t kOwnerDrivesNanos = 200000;

void* allocateSlots(size_t bytes) {
  void* memory = nullptr;
  if (posix_memalign(&memory, 4096, bytes) != 0) return nullptr;
  memset(memory, 0, bytes);
  return memory;
}

}  // namespace

// One direction of one channel with one peer: a plugin comm and its FIFO.
class NetConnection {
 public:
  NetConnection(const weftNet_v1_t* plugin, bool isSend, int rank, int peer, std::string peerAddress,
                const NetConfig& config)
      : plugin_(plugin),
        isSend_(isSend),
        rank_(rank),
        peer_(peer),
        peerAddress_(std::move(peerAddress)),
        nSlots_(static_cast<uint64_t>(config.nSlots)),
        slotBytes_(config.slotBytes),
        stride_(kHeaderLine + config.slotBytes),
        requests_(static_cast<size_t>(config.nSlots), nullptr),
        sizes_(static_cast<size_t>(config.nSlots), 0),
        device_(config.wantDeviceSlots),
        config_(config) {}

  ~NetConnection() {
    close();
    if (device_)
      config_.freeDeviceSlots(slots_);
    else
      free(slots_);
  }

  Status allocate() {
    slots_ =
        static_cast<char*>(device_ ? config_.allocateDeviceSlots(stride_ * nSlots_) : allocateSlots(stride_ * nSlots_));
    if (slots_ == nullptr)
      return WEFT_ERROR(weftSystemError, "rank %d: cannot allocate net FIFO slots%s", rank_,
                        device_ ? " in device memory" : "");
    return Status::ok();
  }
  // Once connected: registers the slots with the plugin.
  Status attach(void* comm) {
    comm_ = comm;
    int type = device_ ? WEFT_NET_PTR_CUDA : WEFT_NET_PTR_HOST;
    if (plugin_->regMr(comm_, slots_, stride_ * nSlots_, type, &mhandle_) != weftSuccess)
      return WEFT_ERROR(weftSystemError, "rank %d: net plugin %s cannot register %zu bytes of %s slots", rank_,
                        plugin_->name, stride_ * nSlots_, device_ ? "device-memory" : "host");
    return Status::ok();
  }
  // The slots in device memory that the kernel fills or reads itself;
  // nullptr when they are in host memory.
  char* deviceRing(size_t* stride, uint64_t* count) const {
    if (!device_) return nullptr;
    *stride = stride_;
    *count = nSlots_;
    return slots_;
  }

  void close() {
    if (comm_ == nullptr) return;
    if (mhandle_ != nullptr) plugin_->deregMr(comm_, mhandle_);
    if (isSend_)
      plugin_->closeSend(comm_);
    else
      plugin_->closeRecv(comm_);
    comm_ = nullptr;
    mhandle_ = nullptr;
  }

  int peer() const { return peer_; }
  uint64_t nSlots() const { return nSlots_; }
  bool isSend() const { return isSend_; }
  char* slot(uint64_t index) const { return slots_ + (index % nSlots_) * stride_; }
  size_t slotBytes() const { return slotBytes_; }
  bool broken() const { return broken_.load(std::memory_order_acquire); }
  Status error() const {
    std::lock_guard<std::mutex> lock(errorMutex_);
    return error_;
  }

  // Executor side.
  std::atomic<uint64_t> tail{0};     // send: slots filled; recv: unused
  std::atomic<uint64_t> head{0};     // send: slots sent (free again); recv: slots released
  std::atomic<uint64_t> arrived{0};  // recv: slots received
  std::atomic<uint64_t> ownerDroveAt{0};
  std::atomic<bool> wanted{false};  // recv: the owner waits for data
  void setSize(uint64_t index, size_t bytes) { sizes_[index % nSlots_] = bytes; }

  // Drives the connector if nobody else does; called by its owner.
  void drive() {
    ownerDroveAt.store(monotonicNanos(), std::memory_order_relaxed);
    if (!mutex_.try_lock()) return;
    progressLocked();
    mutex_.unlock();
  }
  enum class Activity { Idle, OwnerDrives, Proxy };
  // Proxy side: whether something is in flight or awaited, and who moves it.
  Activity proxyProgress(uint64_t now) {
    if (now - ownerDroveAt.load(std::memory_order_relaxed) < kOwnerDrivesNanos)
      return busy() ? Activity::OwnerDrives : Activity::Idle;
    if (!mutex_.try_lock()) return Activity::OwnerDrives;
    progressLocked();
    mutex_.unlock();
    return busy() ? Activity::Proxy : Activity::Idle;
  }
  bool busy() const {
    if (broken()) return false;
    if (isSend_) return head.load(std::memory_order_relaxed) != tail.load(std::memory_order_relaxed);
    return wanted.load(std::memory_order_relaxed);
  }
  void closeLocked() {
    std::lock_guard<std::mutex> lock(mutex_);
    close();
    fail(WEFT_ERROR(weftRemoteError, "rank %d: connection %s rank %d closed after a fatal error on this rank", rank_,
                    isSend_ ? "to" : "from", peer_));
  }

 private:
  void fail(Status status) {
    std::lock_guard<std::mutex> lock(errorMutex_);
    if (error_.isOk()) error_ = std::move(status);
    broken_.store(true, std::memory_order_release);
  }

  void pluginFailed(const char* what) {
    char reason[512] = "";
    if (plugin_->errorString != nullptr && comm_ != nullptr) plugin_->errorString(comm_, reason, sizeof(reason));
    fail(WEFT_ERROR(weftRemoteError,
                    "rank %d: the connection %s rank %d (%s) broke during %s%s%s; the peer died, "
                    "aborted or was unreachable",
                    rank_, isSend_ ? "to" : "from", peer_, peerAddress_.c_str(), what, reason[0] ? ": " : "", reason));
  }

  void malformed(size_t size) {
    fail(WEFT_ERROR(weftRemoteError, "rank %d: a malformed %zu-byte message from rank %d (%s)", rank_, size, peer_,
                    peerAddress_.c_str()));
  }

  // Received bytes in device memory made visible to the device: the
  // plugin's flush (an RDMA read behind the writes, for IB), then the
  // device's own.
  bool flush(char* data, size_t size) {
    void* request = nullptr;
    if (plugin_->iflush != nullptr && plugin_->iflush(comm_, data, size, mhandle_, &request) != weftSuccess)
      return false;
    for (int complete = 0; request != nullptr && !complete;)
      if (plugin_->test(request, &complete, nullptr) != weftSuccess) return false;
    if (config_.flushDeviceWrites) config_.flushDeviceWrites();
    return true;
  }

  void progressLocked() {
    if (comm_ == nullptr || broken()) return;
    if (isSend_) {
      uint64_t filled = tail.load(std::memory_order_acquire);
      // A failed post is reported once the requests before it are tested:
      // what they carry still counts.
      bool postFailed = false;
      while (issued_ < filled) {
        void* request = nullptr;
        size_t index = issued_ % nSlots_;
        if (plugin_->isend(comm_, slot(issued_), kHeaderLine + sizes_[index], 0, mhandle_, &request) != weftSuccess) {
          postFailed = true;
          break;
        }
        if (request == nullptr) break;
        requests_[index] = request;
        ++issued_;
      }
      uint64_t done = head.load(std::memory_order_relaxed);
      while (done < issued_) {
        int complete = 0;
        if (plugin_->test(requests_[done % nSlots_], &complete, nullptr) != weftSuccess) return pluginFailed("a send");
        if (!complete) break;
        ++done;
        head.store(done, std::memory_order_release);
      }
      if (postFailed && done == issued_) pluginFailed("a send");
    } else {
      uint64_t released = head.load(std::memory_order_acquire);
      bool postFailed = false;
      while (issued_ < released + nSlots_) {
        void* request = nullptr;
        if (plugin_->irecv(comm_, slot(issued_), stride_, 0, mhandle_, &request) != weftSuccess) {
          postFailed = true;
          break;
        }
        if (request == nullptr) break;
        requests_[issued_ % nSlots_] = request;
        ++issued_;
      }
      uint64_t got = arrived.load(std::memory_order_relaxed);
      while (got < issued_) {
        int complete = 0;
        size_t size = 0;
        if (plugin_->test(requests_[got % nSlots_], &complete, &size) != weftSuccess) return pluginFailed("a receive");
        if (!complete) break;
        if (device_) {
          // In device memory: the kernel checks the header (and ignores any
          // address); the bytes must reach the device before it is told.
          if (size < kHeaderLine) return malformed(size);
          if (!flush(slot(got), size)) return pluginFailed("a flush of received data");
        } else {
          auto* header = reinterpret_cast<SlotHeader*>(slot(got));
          if (size < kHeaderLine || header->magic != kSlotMagic || size != kHeaderLine + header->bytes)
            return malformed(size);
          header->address = 0;  // an address is meaningless across nodes
        }
        ++got;
        arrived.store(got, std::memory_order_release);
      }
      if (postFailed && got == issued_) pluginFailed("a receive");
    }
  }

  const weftNet_v1_t* plugin_;
  bool isSend_;
  int rank_;
  int peer_;
  std::string peerAddress_;
  uint64_t nSlots_;
  size_t slotBytes_;
  size_t stride_;
  char* slots_ = nullptr;
  void* comm_ = nullptr;
  void* mhandle_ = nullptr;
  std::mutex mutex_;  // whoever progresses the plugin comm holds it
  uint64_t issued_ = 0;
  std::vector<void*> requests_;
  std::vector<size_t> sizes_;
  std::atomic<bool> broken_{false};
  mutable std::mutex errorMutex_;
  Status error_;
  bool device_;       // slots in device memory: the host never touches their bytes
  NetConfig config_;  // its device-slot functions
};

namespace {

class NetSend final : public SendConnector {
 public:
  NetSend(NetConnection* connection, NetTransport* transport) : c_(connection), transport_(transport) {}
  void* trySlot(size_t) override {
    uint64_t tail = c_->tail.load(std::memory_order_relaxed);
    if (tail - c_->head.load(std::memory_order_acquire) >= nSlots()) {
      c_->drive();
      if (tail - c_->head.load(std::memory_order_acquire) >= nSlots()) return nullptr;
    }
    return c_->slot(tail) + kHeaderLine;
  }
  void post(const SlotHeader& header) override {  // after trySlot gave the slot
    uint64_t tail = c_->tail.load(std::memory_order_relaxed);
    memcpy(c_->slot(tail), &header, sizeof(header));
    handOver(tail, header.bytes);
  }
  size_t slotBytes() const override { return c_->slotBytes(); }
  int peer() const override { return c_->peer(); }
  bool drained() override {
    if (c_->head.load(std::memory_order_acquire) != c_->tail.load(std::memory_order_relaxed)) c_->drive();
    return c_->head.load(std::memory_order_acquire) == c_->tail.load(std::memory_order_relaxed);
  }
  char* deviceRing(size_t* stride, uint64_t* count) const override { return c_->deviceRing(stride, count); }
  bool postFilled(uint32_t bytes) override {
    uint64_t tail = c_->tail.load(std::memory_order_relaxed);
    if (tail - c_->head.load(std::memory_order_acquire) >= nSlots()) return false;
    handOver(tail, bytes);
    return true;
  }
  uint64_t completed() override {
    if (c_->head.load(std::memory_order_acquire) != c_->tail.load(std::memory_order_relaxed)) c_->drive();
    return c_->head.load(std::memory_order_acquire);
  }

 private:
  uint64_t nSlots() const { return c_->nSlots(); }
  // Slot `tail`, filled with `bytes` of payload, goes to the plugin.
  void handOver(uint64_t tail, uint32_t bytes) {
    c_->setSize(tail, bytes);
    c_->tail.store(tail + 1, std::memory_order_release);
    c_->drive();  // a small message leaves now, from this thread
    if (c_->head.load(std::memory_order_acquire) != tail + 1) transport_->kick();
  }
  NetConnection* c_;
  NetTransport* transport_;
};

class NetRecv final : public RecvConnector {
 public:
  NetRecv(NetConnection* connection, NetTransport* transport) : c_(connection), transport_(transport) {}
  const SlotHeader* tryHeader() override {
    uint64_t head = c_->head.load(std::memory_order_relaxed);
    if (arrivedCount() == head) return nullptr;
    return reinterpret_cast<const SlotHeader*>(c_->slot(head));
  }
  const void* payload() const override { return c_->slot(c_->head.load(std::memory_order_relaxed)) + kHeaderLine; }
  void release() override { c_->head.store(c_->head.load(std::memory_order_relaxed) + 1, std::memory_order_release); }
  int peer() const override { return c_->peer(); }
  char* deviceRing(size_t* stride, uint64_t* count) const override { return c_->deviceRing(stride, count); }
  uint64_t arrivedCount() override {
    uint64_t head = c_->head.load(std::memory_order_relaxed);
    if (c_->arrived.load(std::memory_order_acquire) == head) {
      c_->drive();
      if (c_->arrived.load(std::memory_order_acquire) == head) {
        if (!c_->wanted.exchange(true, std::memory_order_relaxed)) transport_->kick();
        return head;
      }
    }
    c_->wanted.store(false, std::memory_order_relaxed);
    return c_->arrived.load(std::memory_order_acquire);
  }
  void releaseUpTo(uint64_t released) override {
    if (released > c_->head.load(std::memory_order_relaxed)) c_->head.store(released, std::memory_order_release);
  }

 private:
  NetConnection* c_;
  NetTransport* transport_;
};

}  // namespace

Result<std::unique_ptr<NetTransport>> NetTransport::create(Bootstrap& bootstrap, const std::vector<bool>& remote,
                                                           int rank, const NetConfig& config,
                                                           const std::atomic<bool>* abortFlag) {
  Result<NetPluginChoice> choice = chooseNetPlugin();
  Status chosen = choice.isOk() ? Status::ok() : choice.status();
  if (chosen.isOk() && choice.value().nDevices == 0)
    chosen = WEFT_ERROR(weftSystemError, "net plugin %s has no devices", choice.value().plugin->name);
  // Every rank learns whether every other could pick a network, so that a
  // failure here fails every rank at once instead of leaving some waiting.
  int nranks = bootstrap.nranks();
  std::vector<int32_t> ok(static_cast<size_t>(nranks), 0);
  ok[rank] = chosen.isOk() ? 1 : 0;
  WEFT_CHECK(bootstrap.allGather(ok.data(), sizeof(int32_t)));
  if (!chosen.isOk())
    return WEFT_ERROR(chosen.code(), "rank %d: no network between nodes: %s", rank, chosen.message().c_str());
  for (int r = 0; r < nranks; ++r)
    if (!ok[r]) return WEFT_ERROR(weftRemoteError, "rank %d: rank %d found no network between nodes", rank, r);

  std::unique_ptr<NetTransport> net(new NetTransport());
  net->plugin_ = choice.value().plugin;
  net->rank_ = rank;
  net->nranks_ = nranks;
  net->config_ = config;

  // The device nearest this rank: one on its NUMA node, spread over the
  // node's ranks when several qualify.
  std::vector<int> candidates;
  std::vector<weftNetProperties_v1_t> props(static_cast<size_t>(choice.value().nDevices));
  for (int d = 0; d < choice.value().nDevices; ++d) {
    if (net->plugin_->getProperties(d, &props[d]) != weftSuccess) continue;
    if (config.numaNode >= 0 && props[d].numaNode == config.numaNode) candidates.push_back(d);
  }
  if (candidates.empty())
    for (int d = 0; d < choice.value().nDevices; ++d) candidates.push_back(d);
  net->device_ = candidates[static_cast<size_t>(config.localIndex) % candidates.size()];
  if (config.wantDeviceSlots) {
    bool takes = (props[net->device_].ptrSupport & WEFT_NET_PTR_CUDA) != 0 && config.allocateDeviceSlots &&
                 config.freeDeviceSlots;
    WEFT_INFO(kLogNet | kLogInit, "rank %d: GPUDirect RDMA %s", rank,
              takes ? "on: net slots in device memory, read and written by the NIC"
                    : "wanted, but the net device does not take device memory: slots staged through host memory");
    net->config_.wantDeviceSlots = takes;
    if (takes) net->config_.nSlots = config.deviceSlotCount;
  }
  WEFT_INFO(kLogNet | kLogGraph,
            "rank %d: net device %d (%s, %d Mb/s, NUMA node %d) of plugin %s; this rank is on NUMA node %d", rank,
            net->device_, props[net->device_].name, props[net->device_].speedMbps, props[net->device_].numaNode,
            net->plugin_->name, config.numaNode);

  // Plugins get a key derived from the job secret, never the secret itself:
  // a plugin that sends its key in the clear (the IB plugin's set-up does)
  // then exposes nothing the bootstrap relies on.
  weftNetKey_t key;
  static constexpr char kNetKeyLabel[] = "weft-net-key-v1";
  uint8_t derived[kMacBytes];
  hmacSha256(bootstrap.secret().bytes, kSecretBytes, kNetKeyLabel, sizeof(kNetKeyLabel) - 1, derived);
  static_assert(sizeof(key.bytes) <= kMacBytes, "the net key is cut from one HMAC");
  memcpy(key.bytes, derived, sizeof(key.bytes));

  int nChannels = config.nChannels;
  net->sends_.resize(static_cast<size_t>(nChannels) * nranks);
  net->recvs_.resize(static_cast<size_t>(nChannels) * nranks);
  struct Pending {
    NetConnection* connection;
    void* listenComm = nullptr;
    std::vector<char> handle;
  };
  std::vector<Pending> pending;
  auto cleanup = [&]() {
    for (Pending& p : pending)
      if (p.listenComm != nullptr) net->plugin_->closeListen(p.listenComm);
  };
  // Listen for every incoming connection, send the handles to their senders.
  for (int peer = 0; peer < nranks; ++peer) {
    if (!remote[peer]) continue;
    std::string address = bootstrap.peerAddress(peer).toString();
    std::vector<char> handles(static_cast<size_t>(nChannels) * WEFT_NET_HANDLE_BYTES, 0);
    for (int c = 0; c < nChannels; ++c) {
      auto recv = std::make_unique<NetConnection>(net->plugin_, false, rank, peer, address, net->config_);
      WEFT_CHECK(recv->allocate());
      Pending p;
      p.connection = recv.get();
      if (net->plugin_->listen(net->device_, &key, handles.data() + c * WEFT_NET_HANDLE_BYTES, &p.listenComm) !=
          weftSuccess) {
        cleanup();
        return WEFT_ERROR(weftSystemError, "rank %d: net plugin %s cannot listen on device %d", rank,
                          net->plugin_->name, net->device_);
      }
      pending.push_back(std::move(p));
      net->recvs_[static_cast<size_t>(c) * nranks + peer] = std::move(recv);
    }
    Status sent = bootstrap.send(peer, kTagNetHandles, handles.data(), handles.size());
    if (!sent.isOk()) {
      cleanup();
      return sent;
    }
  }
  for (int peer = 0; peer < nranks; ++peer) {
    if (!remote[peer]) continue;
    std::string address = bootstrap.peerAddress(peer).toString();
    std::vector<char> handles(static_cast<size_t>(nChannels) * WEFT_NET_HANDLE_BYTES);
    Status got = bootstrap.recv(peer, kTagNetHandles, handles.data(), handles.size());
    if (!got.isOk()) {
      cleanup();
      return got;
    }
    for (int c = 0; c < nChannels; ++c) {
      auto send = std::make_unique<NetConnection>(net->plugin_, true, rank, peer, address, net->config_);
      WEFT_CHECK(send->allocate());
      Pending p;
      p.connection = send.get();
      p.handle.assign(handles.begin() + c * WEFT_NET_HANDLE_BYTES, handles.begin() + (c + 1) * WEFT_NET_HANDLE_BYTES);
      pending.push_back(std::move(p));
      net->sends_[static_cast<size_t>(c) * nranks + peer] = std::move(send);
    }
  }
  // Connect and accept everything together, without blocking on any one.
  uint64_t deadline = monotonicNanos() + (config.timeoutNanos ? config.timeoutNanos : 300000000000ull);
  size_t left = pending.size();
  std::vector<bool> done(pending.size(), false);
  while (left > 0) {
    bool moved = false;
    for (size_t i = 0; i < pending.size(); ++i) {
      if (done[i]) continue;
      Pending& p = pending[i];
      void* comm = nullptr;
      weftResult_t rc = p.connection->isSend() ? net->plugin_->connect(net->device_, &key, p.handle.data(), &comm)
                                               : net->plugin_->accept(p.listenComm, &comm);
      if (rc != weftSuccess) {
        cleanup();
        return WEFT_ERROR(weftRemoteError, "rank %d: cannot %s rank %d (%s) over %s", rank,
                          p.connection->isSend() ? "connect to" : "accept a connection from", p.connection->peer(),
                          bootstrap.peerAddress(p.connection->peer()).toString().c_str(), net->plugin_->name);
      }
      if (comm == nullptr) continue;
      Status attached = p.connection->attach(comm);
      if (!attached.isOk()) {
        cleanup();
        return attached;
      }
      done[i] = true;
      --left;
      moved = true;
    }
    if (left == 0) break;
    if (abortFlag != nullptr && abortFlag->load()) {
      cleanup();
      return WEFT_ERROR(weftInvalidUsage, "rank %d: communicator aborted while connecting", rank);
    }
    if (monotonicNanos() > deadline) {
      cleanup();
      std::string missing;
      for (size_t i = 0; i < pending.size(); ++i)
        if (!done[i])
          missing +=
              format(" %s rank %d;", pending[i].connection->isSend() ? "to" : "from", pending[i].connection->peer());
      return WEFT_ERROR(weftTimeout, "rank %d: net connections not established within WEFT_TIMEOUT:%s", rank,
                        missing.c_str());
    }
    if (!moved) {
      timespec nap{0, 100000};
      nanosleep(&nap, nullptr);
    }
  }
  cleanup();
  for (auto& c : net->sends_)
    if (c) net->all_.push_back(c.get());
  for (auto& c : net->recvs_)
    if (c) net->all_.push_back(c.get());
  // Connectors for the executor.
  net->sendConnectors_.resize(net->sends_.size());
  net->recvConnectors_.resize(net->recvs_.size());
  for (size_t i = 0; i < net->sends_.size(); ++i) {
    if (net->sends_[i]) net->sendConnectors_[i] = std::make_unique<NetSend>(net->sends_[i].get(), net.get());
    if (net->recvs_[i]) net->recvConnectors_[i] = std::make_unique<NetRecv>(net->recvs_[i].get(), net.get());
  }
  NetTransport* self = net.get();
  net->proxy_ = std::thread([self] { self->proxyLoop(); });
  if (config.bindProxy) {
    int rc = pthread_setaffinity_np(net->proxy_.native_handle(), sizeof(config.proxyCpus), &config.proxyCpus);
    if (rc != 0) WEFT_INFO(kLogNet | kLogInit, "rank %d: could not bind the net proxy thread: %s", rank, strerror(rc));
  }
  WEFT_INFO(kLogNet | kLogInit,
            "rank %d: net transport over %s: %zu connections, %d channel(s), %d x %zu-byte slots each%s", rank,
            net->plugin_->name, net->all_.size(), nChannels, net->config_.nSlots, config.slotBytes,
            net->config_.wantDeviceSlots ? " in device memory" : "");
  return net;
}

NetTransport::~NetTransport() {
  // A send completes for the executor once its slot is posted; the bytes
  // may still be here. Let them leave before closing (unless aborting).
  uint64_t deadline = monotonicNanos() + (config_.timeoutNanos ? config_.timeoutNanos : 300000000000ull);
  while (!abort_.load(std::memory_order_acquire)) {
    bool drained = true;
    for (NetConnection* c : all_) {
      if (!c->isSend() || c->broken()) continue;
      if (c->head.load(std::memory_order_acquire) != c->tail.load(std::memory_order_acquire)) {
        c->drive();
        drained = false;
      }
    }
    if (drained) break;
    if (monotonicNanos() > deadline) {
      WEFT_WARN("rank %d: closing net connections with data not yet sent after WEFT_TIMEOUT", rank_);
      break;
    }
    sched_yield();
  }
  stop_.store(true);
  kick();
  if (proxy_.joinable()) proxy_.join();
  sendConnectors_.clear();
  recvConnectors_.clear();
  for (NetConnection* c : all_) c->close();
}

SendConnector* NetTransport::sendTo(int peer, int channel) const {
  return sendConnectors_[static_cast<size_t>(channel) * nranks_ + peer].get();
}

RecvConnector* NetTransport::recvFrom(int peer, int channel) const {
  return recvConnectors_[static_cast<size_t>(channel) * nranks_ + peer].get();
}

Status NetTransport::checkPeerAlive(int peer) const {
  for (int c = 0; c < config_.nChannels; ++c) {
    for (const auto* list : {&sends_, &recvs_}) {
      NetConnection* connection = (*list)[static_cast<size_t>(c) * nranks_ + peer].get();
      if (connection != nullptr && connection->broken()) return connection->error();
    }
  }
  return Status::ok();
}

void NetTransport::abortConnections() {
  abort_.store(true, std::memory_order_release);
  kick();
}

void NetTransport::kick() {
  if (sleeping_.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    sleepWake_.notify_one();
  }
}

void NetTransport::proxyLoop() {
  bool closed = false;
  uint64_t idleSpins = 0;
  while (!stop_.load(std::memory_order_acquire)) {
    if (abort_.load(std::memory_order_acquire) && !closed) {
      for (NetConnection* c : all_) c->closeLocked();
      closed = true;
    }
    uint64_t now = monotonicNanos();
    bool proxyWork = false, ownerWork = false;
    for (NetConnection* c : all_) {
      NetConnection::Activity activity = c->proxyProgress(now);
      proxyWork |= activity == NetConnection::Activity::Proxy;
      ownerWork |= activity == NetConnection::Activity::OwnerDrives;
    }
    if (proxyWork) {
      idleSpins = 0;
      sched_yield();
      continue;
    }
    if (ownerWork) {  // the owners drive: look again soon, without taking a core from them
      idleSpins = 0;
      timespec nap{0, 50000};
      nanosleep(&nap, nullptr);
      continue;
    }
    // Nothing in flight: a little spinning for the next message, then sleep
    // until a slot is posted or a receiver waits.
    if (++idleSpins < 64) {
      sched_yield();
      continue;
    }
    std::unique_lock<std::mutex> lock(sleepMutex_);
    sleeping_.store(true, std::memory_order_release);
    bool anyBusy = false;
    for (NetConnection* c : all_) anyBusy |= c->busy();
    if (!anyBusy && !stop_.load() && !abort_.load()) sleepWake_.wait_for(lock, std::chrono::milliseconds(10));
    sleeping_.store(false, std::memory_order_release);
  }
}

}  // namespace weft
