// The socket net plugin: TCP between nodes.
//
// A connection is one control stream plus, with helper threads
// (WEFT_SOCKET_NTHREADS x WEFT_NSOCKS_PERTHREAD), several data streams.
// Every message starts with an 8-byte size record on the control stream.
// Without data streams, or for messages up to kInlineBytes, the payload
// follows on the control stream; larger payloads are cut into chunks dealt
// round-robin over the data streams, each pumped by its helper thread, and
// both sides deal them the same way because both know the sizes.
//
// Connection set-up never blocks: connect() advances a state machine kept in
// the handle; the listener reads each new connection's hello without
// waiting, and a connection whose hello is not the job's key (or that stays
// silent) is dropped and logged.
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bootstrap/handshake.h"
#include "bootstrap/unique_id.h"
#include "core/clock.h"
#include "core/env.h"
#include "core/logging.h"
#include "core/socket.h"
#include "transports/net/net_plugin.h"

namespace weft {
namespace {

constexpr uint32_t kHelloMagic = 0x57534f43;   // "WSOC"
constexpr uint32_t kHandleMagic = 0x57534848;  // "WSHH"
constexpr size_t kInlineBytes = 64 * 1024;
constexpr size_t kMinChunkBytes = 128 * 1024;
constexpr int kMaxSocks = 64;
constexpr uint64_t kHelloPatienceNanos = 10ull * 1000000000ull;
constexpr int kLoopbackMbps = 100000;  // nominal: loopback is a memory copy

// Each stream's hello answers the nonce the listener sent on accept with an
// HMAC-SHA256 under the job key over that nonce and the hello itself, so the
// key never travels and a recorded hello is worth nothing on another stream.
struct Hello {
  uint32_t magic;
  uint16_t index;   // 0: control stream, 1..: data streams
  uint16_t nSocks;  // data streams of the connection
  uint64_t listenId;
  uint64_t connId;
  uint8_t mac[kMacBytes];
  uint8_t pad[8];
};
static_assert(sizeof(Hello) == 64, "hello is 64 bytes");

using Nonce = std::array<uint8_t, kNonceBytes>;

void streamMac(const weftNetKey_t& key, const Nonce& nonce, const Hello& hello, uint8_t out[kMacBytes]) {
  static constexpr char kLabel[] = "weft-net-socket-v1";
  Hello claimed = hello;
  memset(claimed.mac, 0, sizeof(claimed.mac));
  uint8_t message[sizeof(kLabel) + kNonceBytes + sizeof(Hello)];
  memcpy(message, kLabel, sizeof(kLabel));
  memcpy(message + sizeof(kLabel), nonce.data(), kNonceBytes);
  memcpy(message + sizeof(kLabel) + kNonceBytes, &claimed, sizeof(claimed));
  hmacSha256(key.bytes, WEFT_NET_KEY_BYTES, message, sizeof(message), out);
}

struct ConnectState;

struct Handle {
  uint32_t magic;
  uint16_t nSocks;
  uint16_t pad;
  uint64_t listenId;
  WireAddress address;
  ConnectState* state;  // the connecting side's progress (zero from the listener)
};
static_assert(sizeof(Handle) <= WEFT_NET_HANDLE_BYTES, "handle fits");

struct Device {
  NetInterface nic;
  weftNetProperties_v1_t props{};
};

std::mutex gMutex;
std::vector<Device> gDevices;
bool gInitialized = false;

int helperThreads() { return static_cast<int>(std::clamp<int64_t>(envInt(EnvParam::SocketNthreads), 0, 16)); }
int socksPerThread() { return static_cast<int>(std::clamp<int64_t>(envInt(EnvParam::NsocksPerThread), 1, 16)); }

std::string readSysfs(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

void fillProperties(Device* device, int index) {
  weftNetProperties_v1_t& p = device->props;
  snprintf(p.name, sizeof(p.name), "%s", device->nic.name.c_str());
  std::string base = "/sys/class/net/" + device->nic.name;
  char real[PATH_MAX];
  if (realpath((base + "/device").c_str(), real) != nullptr) {
    size_t n = std::min(strlen(real), sizeof(p.pciPath) - 1);
    memcpy(p.pciPath, real, n);
    p.pciPath[n] = '\0';
  }
  // Virtual interfaces have no speed in sysfs (lo, veth: empty or -1):
  // loopback moves memory, so it gets a nominal 100 Gb/s rather than 0;
  // others keep 0, shown as unknown.
  std::string speed = readSysfs(base + "/speed");
  p.speedMbps = speed.empty() ? 0 : std::max(0, atoi(speed.c_str()));
  if (p.speedMbps == 0 && device->nic.name == "lo") p.speedMbps = kLoopbackMbps;
  std::string numa = readSysfs(base + "/device/numa_node");
  p.numaNode = numa.empty() ? -1 : atoi(numa.c_str());
  p.ptrSupport = WEFT_NET_PTR_HOST;
  p.port = 0;
  p.guid = static_cast<uint64_t>(index);
  p.maxComms = 65536;
  p.maxRecvs = 1024;
  p.latencyUs = 0;
}

// ---- data movement -------------------------------------------------------

struct Request;

// One piece of a message on one stream.
struct Task {
  char* data;
  size_t bytes;
  size_t done = 0;
  Request* request;
};

struct Comm;

struct Request {
  Comm* comm = nullptr;  // the request handle weft holds is the Request itself
  bool isSend = false;
  char* data = nullptr;
  size_t capacity = 0;  // send: the size; receive: the buffer's size
  size_t size = 0;      // receive: the size announced by the sender
  // Control-stream state.
  uint64_t sizeRecord = 0;
  size_t recordDone = 0;  // bytes of the size record moved
  size_t inlineDone = 0;  // payload bytes moved on the control stream
  bool dealt = false;     // chunks handed to the data streams
  std::atomic<int> chunksLeft{0};
  bool complete = false;
  bool free = true;
};

// A data stream: tasks in the order both sides dealt them.
struct Stream {
  int fd = -1;
  std::mutex mutex;
  std::deque<Task> tasks;
};

struct Comm {
  bool isSend = false;
  int control = -1;
  std::vector<std::unique_ptr<Stream>> streams;
  std::vector<std::thread> helpers;
  std::atomic<bool> stopping{false};
  // Helpers sleep here while none of their streams has a task.
  std::mutex wakeMutex;
  std::condition_variable wake;
  uint64_t dealt = 0;  // under wakeMutex
  std::atomic<bool> failed{false};
  bool closedBetweenMessages = false;  // set before failed, by the control stream's owner
  std::mutex errorMutex;
  std::string error;
  std::string peer;
  size_t nextStream = 0;
  // Requests in posting order; the first not complete is the one the
  // control stream works on.
  std::deque<Request*> queue;
  std::vector<std::unique_ptr<Request>> pool;

  void setError(const std::string& message) {
    std::lock_guard<std::mutex> lock(errorMutex);
    if (error.empty()) error = message;
    failed.store(true, std::memory_order_release);
  }
  std::string errorText() {
    std::lock_guard<std::mutex> lock(errorMutex);
    return error;
  }
};

// Moves one task forward without blocking; false on a broken stream.
// *moved reports whether bytes moved.
// peer: the other end's address, taken while the stream was connected.
// *betweenMessages (when given) is set if the peer closed before the first
// byte of this task: the end of a stream at a message boundary, which is how
// a peer that closes its communicator leaves.
bool pumpTask(int fd, bool send, Task* task, const std::string& peer, std::string* error, bool* moved,
              bool* betweenMessages = nullptr) {
  while (task->done < task->bytes) {
    ssize_t n = send ? ::send(fd, task->data + task->done, task->bytes - task->done, MSG_NOSIGNAL)
                     : ::recv(fd, task->data + task->done, task->bytes - task->done, 0);
    if (n > 0) {
      task->done += static_cast<size_t>(n);
      *moved = true;
      continue;
    }
    if (n == 0 && !send) {
      if (betweenMessages != nullptr && task->done == 0) {
        *betweenMessages = true;
        *error = format(
            "connection from %s closed by the peer between messages (it closed its communicator, "
            "exited or died)",
            peer.c_str());
      } else {
        *error = format("connection from %s closed by the peer in the middle of a message (it exited or died)",
                        peer.c_str());
      }
      return false;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
    *error = format("%s %s failed: %s", send ? "send to" : "receive from", peer.c_str(), strerror(errno));
    return false;
  }
  return true;
}

// Helper thread: pumps its streams, sleeping in poll() while they cannot move.
void helperLoop(Comm* comm, const std::vector<Stream*>& streams) {
  std::vector<pollfd> fds(streams.size());
  while (!comm->stopping.load(std::memory_order_acquire) && !comm->failed.load(std::memory_order_acquire)) {
    bool anyWork = false;
    size_t nPoll = 0;
    for (Stream* stream : streams) {
      Task* task = nullptr;
      {
        std::lock_guard<std::mutex> lock(stream->mutex);
        if (!stream->tasks.empty()) task = &stream->tasks.front();
      }
      if (task == nullptr) continue;
      anyWork = true;
      std::string error;
      bool moved = false;
      if (!pumpTask(stream->fd, comm->isSend, task, comm->peer, &error, &moved)) {
        comm->setError(error);
        return;
      }
      if (task->done == task->bytes) {
        Request* request = task->request;
        {
          std::lock_guard<std::mutex> lock(stream->mutex);
          stream->tasks.pop_front();
        }
        request->chunksLeft.fetch_sub(1, std::memory_order_acq_rel);
      } else {
        fds[nPoll++] = pollfd{stream->fd, static_cast<short>(comm->isSend ? POLLOUT : POLLIN), 0};
      }
    }
    if (!anyWork) {
      std::unique_lock<std::mutex> lock(comm->wakeMutex);
      uint64_t seen = comm->dealt;
      comm->wake.wait_for(lock, std::chrono::milliseconds(100),
                          [&] { return comm->dealt != seen || comm->stopping.load(std::memory_order_acquire); });
      continue;
    }
    if (nPoll > 0) ::poll(fds.data(), nPoll, 10);
  }
}

void dealChunks(Comm* comm, Request* request, size_t bytes) {
  size_t nStreams = comm->streams.size();
  size_t chunk = std::max(kMinChunkBytes, (bytes + nStreams - 1) / nStreams);
  chunk = (chunk + 4095) & ~static_cast<size_t>(4095);
  size_t nChunks = (bytes + chunk - 1) / chunk;
  request->chunksLeft.store(static_cast<int>(nChunks), std::memory_order_release);
  for (size_t c = 0; c < nChunks; ++c) {
    size_t offset = c * chunk;
    Stream* stream = comm->streams[comm->nextStream++ % nStreams].get();
    std::lock_guard<std::mutex> lock(stream->mutex);
    stream->tasks.push_back(Task{request->data + offset, std::min(chunk, bytes - offset), 0, request});
  }
  request->dealt = true;
  {
    std::lock_guard<std::mutex> lock(comm->wakeMutex);
    ++comm->dealt;
  }
  comm->wake.notify_all();
}

bool usesStreams(const Comm* comm, size_t bytes) { return !comm->streams.empty() && bytes > kInlineBytes; }

// Advances the control stream: size records and inline payloads, in order.
bool progressControl(Comm* comm) {
  for (Request* request : comm->queue) {
    if (request->complete) continue;
    if (request->dealt) {
      if (request->chunksLeft.load(std::memory_order_acquire) == 0) request->complete = true;
      continue;  // its payload is on the data streams; the next record may follow
    }
    std::string error;
    bool moved = false;
    if (request->recordDone < sizeof(uint64_t)) {
      if (comm->isSend && !usesStreams(comm, request->capacity)) {
        // Record and payload in one system call.
        iovec iov[2] = {{reinterpret_cast<char*>(&request->sizeRecord) + request->recordDone,
                         sizeof(uint64_t) - request->recordDone},
                        {request->data, request->capacity}};
        // sendmsg, not writev: MSG_NOSIGNAL, so a peer that died makes an
        // error here instead of a SIGPIPE that kills this process.
        msghdr message{};
        message.msg_iov = iov;
        message.msg_iovlen = request->capacity > 0 ? 2 : 1;
        ssize_t n = ::sendmsg(comm->control, &message, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
          comm->setError(format("send to %s failed: %s", comm->peer.c_str(), strerror(errno)));
          return false;
        }
        size_t recordPart = std::min(static_cast<size_t>(n), sizeof(uint64_t) - request->recordDone);
        request->recordDone += recordPart;
        request->inlineDone += static_cast<size_t>(n) - recordPart;
      } else {
        Task task{reinterpret_cast<char*>(&request->sizeRecord), sizeof(uint64_t), request->recordDone, request};
        bool betweenMessages = false;
        if (!pumpTask(comm->control, comm->isSend, &task, comm->peer, &error, &moved, &betweenMessages)) {
          if (betweenMessages) comm->closedBetweenMessages = true;
          comm->setError(error);
          return false;
        }
        request->recordDone = task.done;
      }
      if (request->recordDone < sizeof(uint64_t)) return true;
      if (!comm->isSend) {
        request->size = request->sizeRecord;
        if (request->size > request->capacity) {
          comm->setError(format("a %llu-byte message from %s does not fit the %zu-byte receive posted for it",
                                static_cast<unsigned long long>(request->size), comm->peer.c_str(), request->capacity));
          return false;
        }
      }
    }
    size_t bytes = comm->isSend ? request->capacity : request->size;
    if (usesStreams(comm, bytes)) {
      dealChunks(comm, request, bytes);
      continue;
    }
    Task task{request->data, bytes, request->inlineDone, request};
    if (!pumpTask(comm->control, comm->isSend, &task, comm->peer, &error, &moved)) {
      comm->setError(error);
      return false;
    }
    request->inlineDone = task.done;
    if (task.done < bytes) return true;
    request->complete = true;
  }
  // Retire completed requests at the front.
  while (!comm->queue.empty() && comm->queue.front()->complete && comm->queue.front()->free) comm->queue.pop_front();
  return true;
}

Request* newRequest(Comm* comm) {
  for (auto& request : comm->pool)
    if (request->free) {
      bool inQueue = false;
      for (Request* queued : comm->queue) inQueue |= queued == request.get();
      if (!inQueue) return request.get();
    }
  comm->pool.push_back(std::make_unique<Request>());
  return comm->pool.back().get();
}

weftResult_t post(Comm* comm, bool send, void* data, size_t size, void** request) {
  *request = nullptr;
  if (comm->failed.load(std::memory_order_acquire)) return weftSystemError;
  Request* r = newRequest(comm);
  r->isSend = send;
  r->data = static_cast<char*>(data);
  r->capacity = size;
  r->size = send ? size : 0;
  r->sizeRecord = send ? size : 0;
  r->recordDone = 0;
  r->inlineDone = 0;
  r->dealt = false;
  r->chunksLeft.store(0);
  r->complete = false;
  r->free = false;
  comm->queue.push_back(r);
  r->comm = comm;
  *request = r;
  // Start moving at once: a small message leaves in this call.
  progressControl(comm);
  return weftSuccess;
}

void closeComm(Comm* comm) {
  comm->stopping.store(true, std::memory_order_release);
  for (auto& stream : comm->streams) ::shutdown(stream->fd, SHUT_RDWR);
  {
    std::lock_guard<std::mutex> lock(comm->wakeMutex);
    ++comm->dealt;
  }
  comm->wake.notify_all();
  for (auto& thread : comm->helpers) thread.join();
  for (auto& stream : comm->streams) ::close(stream->fd);
  if (comm->control >= 0) ::close(comm->control);
  delete comm;
}

Comm* makeComm(bool isSend, std::vector<int> fds) {
  auto* comm = new Comm();
  comm->isSend = isSend;
  comm->control = fds[0];
  comm->peer = peerName(fds[0]);
  for (size_t i = 1; i < fds.size(); ++i) {
    auto stream = std::make_unique<Stream>();
    stream->fd = fds[i];
    comm->streams.push_back(std::move(stream));
  }
  int nThreads = std::max(1, helperThreads());
  if (!comm->streams.empty()) {
    std::vector<std::vector<Stream*>> perThread(static_cast<size_t>(std::min<int>(nThreads, comm->streams.size())));
    for (size_t i = 0; i < comm->streams.size(); ++i) perThread[i % perThread.size()].push_back(comm->streams[i].get());
    for (auto& streams : perThread) comm->helpers.emplace_back(helperLoop, comm, streams);
  }
  return comm;
}

// ---- connection set-up ---------------------------------------------------

struct Pending {
  int fd;
  Nonce nonce;  // this stream's challenge
  Hello hello;
  size_t got = 0;
  uint64_t since;
  std::string from;
};

struct Group {
  std::vector<int> fds;
  int arrived = 0;
};

struct ListenComm {
  int fd = -1;
  weftNetKey_t key;
  uint64_t listenId = 0;
  uint16_t nSocks = 0;
  std::vector<Pending> pending;
  std::map<uint64_t, Group> groups;
};

struct ConnectState {
  SocketAddress address;
  std::vector<int> fds;
  std::vector<bool> connected;
  std::vector<size_t> helloSent;
  std::vector<Hello> hellos;
  std::vector<Nonce> nonces;  // each stream's challenge, as it arrives
  std::vector<size_t> nonceGot;
};

weftResult_t socketInit(weftNetLogFn_t) {
  std::lock_guard<std::mutex> lock(gMutex);
  if (gInitialized) return weftSuccess;
  std::vector<NetInterface> nics = findInterfaces();
  // chooseNetPlugin() turns this into the error that lists the candidates.
  if (nics.empty()) return weftSystemError;
  // One device per interface name (the first address of each).
  for (const NetInterface& nic : nics) {
    bool seen = false;
    for (const Device& device : gDevices) seen |= device.nic.name == nic.name;
    if (seen) continue;
    Device device;
    device.nic = nic;
    fillProperties(&device, static_cast<int>(gDevices.size()));
    gDevices.push_back(device);
    WEFT_INFO(kLogNet, "socket net: device %zu is %s (%s), %s", gDevices.size() - 1, nic.name.c_str(),
              nic.address.toString().c_str(),
              device.props.speedMbps > 0
                  ? format("%d Mb/s%s", device.props.speedMbps, nic.name == "lo" ? " (nominal, loopback)" : "").c_str()
                  : "speed unknown");
  }
  gInitialized = true;
  return weftSuccess;
}

weftResult_t socketDevices(int* ndev) {
  std::lock_guard<std::mutex> lock(gMutex);
  *ndev = static_cast<int>(gDevices.size());
  return weftSuccess;
}

weftResult_t socketGetProperties(int dev, weftNetProperties_v1_t* props) {
  std::lock_guard<std::mutex> lock(gMutex);
  if (dev < 0 || dev >= static_cast<int>(gDevices.size()) || props == nullptr) return weftInvalidArgument;
  *props = gDevices[dev].props;
  return weftSuccess;
}

weftResult_t socketListen(int dev, const weftNetKey_t* key, void* handleBytes, void** listenComm) {
  SocketAddress address;
  {
    std::lock_guard<std::mutex> lock(gMutex);
    if (dev < 0 || dev >= static_cast<int>(gDevices.size())) return weftInvalidArgument;
    address = gDevices[dev].nic.address;
  }
  address.setPort(0);
  SocketAddress bound;
  Result<Socket> sock = Socket::listen(address, &bound);
  if (!sock.isOk()) {
    WEFT_WARN("socket net: %s", sock.status().message().c_str());
    return weftSystemError;
  }
  auto* comm = new ListenComm();
  comm->fd = sock.value().release();  // the comm owns the descriptor now
  comm->key = *key;
  Status random = randomBytes(&comm->listenId, sizeof(comm->listenId));
  if (!random.isOk()) {
    WEFT_WARN("socket net: %s", random.message().c_str());
    ::close(comm->fd);
    delete comm;
    return weftSystemError;
  }
  comm->nSocks = static_cast<uint16_t>(std::min(kMaxSocks, helperThreads() * socksPerThread()));
  Handle handle{};
  handle.magic = kHandleMagic;
  handle.nSocks = comm->nSocks;
  handle.listenId = comm->listenId;
  handle.address = toWire(bound);
  handle.state = nullptr;
  memset(handleBytes, 0, WEFT_NET_HANDLE_BYTES);
  memcpy(handleBytes, &handle, sizeof(handle));
  *listenComm = comm;
  return weftSuccess;
}

weftResult_t socketConnect(int, const weftNetKey_t* key, void* handleBytes, void** sendComm) {
  *sendComm = nullptr;
  auto* handle = static_cast<Handle*>(handleBytes);
  if (handle->magic != kHandleMagic || handle->nSocks > kMaxSocks) return weftInvalidArgument;
  ConnectState* state = handle->state;
  if (state == nullptr) {
    state = new ConnectState();
    handle->state = state;
    state->address = fromWire(handle->address);
    int n = 1 + handle->nSocks;
    uint64_t connId = 0;
    Status random = randomBytes(&connId, sizeof(connId));
    if (!random.isOk()) {
      WEFT_WARN("socket net: %s", random.message().c_str());
      return weftSystemError;
    }
    for (int i = 0; i < n; ++i) {
      int fd = ::socket(state->address.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0) return weftSystemError;
      tuneSocket(fd);
      int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&state->address.storage), state->address.length);
      if (rc != 0 && errno != EINPROGRESS) {
        WEFT_WARN("socket net: connect to %s: %s", state->address.toString().c_str(), strerror(errno));
        ::close(fd);
        return weftSystemError;
      }
      state->fds.push_back(fd);
      state->connected.push_back(rc == 0);
      state->helloSent.push_back(0);
      state->nonces.push_back({});
      state->nonceGot.push_back(0);
      Hello hello{};
      hello.magic = kHelloMagic;
      hello.index = static_cast<uint16_t>(i);
      hello.nSocks = handle->nSocks;
      hello.listenId = handle->listenId;
      hello.connId = connId;
      state->hellos.push_back(hello);
    }
  }
  bool all = true;
  for (size_t i = 0; i < state->fds.size(); ++i) {
    int fd = state->fds[i];
    if (!state->connected[i]) {
      pollfd pfd{fd, POLLOUT, 0};
      if (::poll(&pfd, 1, 0) <= 0) {
        all = false;
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        WEFT_WARN("socket net: connect to %s: %s", state->address.toString().c_str(), strerror(err));
        for (int f : state->fds) ::close(f);
        delete state;
        handle->state = nullptr;
        return weftSystemError;
      }
      state->connected[i] = true;
    }
    if (state->nonceGot[i] < kNonceBytes) {
      ssize_t n = ::recv(fd, state->nonces[i].data() + state->nonceGot[i], kNonceBytes - state->nonceGot[i], 0);
      if (n > 0) state->nonceGot[i] += static_cast<size_t>(n);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        WEFT_WARN("socket net: %s closed the connection before sending its challenge (%s)",
                  state->address.toString().c_str(), n == 0 ? "closed" : strerror(errno));
        for (int f : state->fds) ::close(f);
        delete state;
        handle->state = nullptr;
        return weftSystemError;
      }
      if (state->nonceGot[i] < kNonceBytes) {
        all = false;
        continue;
      }
      streamMac(*key, state->nonces[i], state->hellos[i], state->hellos[i].mac);
    }
    if (state->helloSent[i] < sizeof(Hello)) {
      ssize_t n = ::send(fd, reinterpret_cast<char*>(&state->hellos[i]) + state->helloSent[i],
                         sizeof(Hello) - state->helloSent[i], MSG_NOSIGNAL);
      if (n > 0)
        state->helloSent[i] += static_cast<size_t>(n);
      else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        WEFT_WARN("socket net: hello to %s: %s", state->address.toString().c_str(), strerror(errno));
        for (int f : state->fds) ::close(f);
        delete state;
        handle->state = nullptr;
        return weftSystemError;
      }
      if (state->helloSent[i] < sizeof(Hello)) all = false;
    }
  }
  if (!all) return weftSuccess;
  *sendComm = makeComm(true, state->fds);
  delete state;
  handle->state = nullptr;
  return weftSuccess;
}

void dropPending(Pending& pending, const char* why) {
  WEFT_WARN("socket net: dropped a connection from %s: %s", pending.from.c_str(), why);
  ::close(pending.fd);
  pending.fd = -1;
}

weftResult_t socketAccept(void* listenCommPtr, void** recvComm) {
  *recvComm = nullptr;
  auto* comm = static_cast<ListenComm*>(listenCommPtr);
  for (;;) {
    int fd = ::accept4(comm->fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) break;
    tuneSocket(fd);
    Pending pending{};
    pending.fd = fd;
    pending.since = monotonicNanos();
    pending.from = peerName(fd);
    // A fresh socket's buffer takes the nonce at once.
    if (!randomBytes(pending.nonce.data(), kNonceBytes).isOk() ||
        ::send(fd, pending.nonce.data(), kNonceBytes, MSG_NOSIGNAL | MSG_DONTWAIT) != kNonceBytes) {
      dropPending(pending, "its challenge could not be sent");
      continue;
    }
    comm->pending.push_back(pending);
  }
  uint64_t now = monotonicNanos();
  for (Pending& pending : comm->pending) {
    ssize_t n =
        ::recv(pending.fd, reinterpret_cast<char*>(&pending.hello) + pending.got, sizeof(Hello) - pending.got, 0);
    if (n > 0)
      pending.got += static_cast<size_t>(n);
    else if (n == 0) {
      dropPending(pending, "it closed before answering its challenge");
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      dropPending(pending, strerror(errno));
      continue;
    }
    if (pending.got < sizeof(Hello)) {
      if (now - pending.since > kHelloPatienceNanos)
        dropPending(pending, "it did not answer its challenge within 10 s");
      continue;
    }
    const Hello& hello = pending.hello;
    uint8_t expected[kMacBytes];
    streamMac(comm->key, pending.nonce, hello, expected);
    if (hello.magic != kHelloMagic) {
      dropPending(pending, "not a weft connection (bad hello)");
    } else if (!equalConstantTime(hello.mac, expected, kMacBytes)) {
      dropPending(pending, "its answer does not prove the job key (another job, or a replayed or forged connection)");
    } else if (hello.listenId != comm->listenId || hello.nSocks != comm->nSocks || hello.index > comm->nSocks) {
      dropPending(pending, "meant for another listener");
    } else {
      Group& group = comm->groups[hello.connId];
      if (group.fds.empty()) group.fds.assign(1 + comm->nSocks, -1);
      if (group.fds[hello.index] >= 0) {
        dropPending(pending, "duplicate stream");
        continue;
      }
      group.fds[hello.index] = pending.fd;
      ++group.arrived;
      pending.fd = -1;
    }
  }
  std::erase_if(comm->pending, [](const Pending& p) { return p.fd < 0; });
  for (auto it = comm->groups.begin(); it != comm->groups.end(); ++it) {
    if (it->second.arrived == 1 + comm->nSocks) {
      *recvComm = makeComm(false, it->second.fds);
      comm->groups.erase(it);
      break;
    }
  }
  return weftSuccess;
}

weftResult_t socketRegMr(void*, void*, size_t, int type, void** mhandle) {
  if (type != WEFT_NET_PTR_HOST) return weftInvalidArgument;
  *mhandle = nullptr;
  return weftSuccess;
}

weftResult_t socketDeregMr(void*, void*) { return weftSuccess; }

weftResult_t socketIsend(void* sendComm, void* data, size_t size, int, void*, void** request) {
  return post(static_cast<Comm*>(sendComm), true, data, size, request);
}

weftResult_t socketIrecv(void* recvComm, void* data, size_t size, int, void*, void** request) {
  return post(static_cast<Comm*>(recvComm), false, data, size, request);
}

weftResult_t socketIflush(void*, void*, size_t, void*, void** request) {
  *request = nullptr;
  return weftSuccess;
}

weftResult_t socketTest(void* requestPtr, int* done, size_t* size) {
  auto* request = static_cast<Request*>(requestPtr);
  Comm* comm = request->comm;
  *done = 0;
  if (!request->complete) progressControl(comm);
  // A later message may have failed (the peer closed after its last one);
  // this one still completes if all of it arrived.
  if (!request->complete) {
    if (comm->failed.load(std::memory_order_acquire)) {
      // A close between messages is how peers leave at the end: not news.
      if (!comm->closedBetweenMessages) WEFT_INFO(kLogNet, "socket net: %s", comm->errorText().c_str());
      return weftSystemError;
    }
    return weftSuccess;
  }
  *done = 1;
  if (size != nullptr) *size = request->isSend ? request->capacity : request->size;
  request->free = true;
  while (!comm->queue.empty() && comm->queue.front()->complete && comm->queue.front()->free) comm->queue.pop_front();
  return weftSuccess;
}

weftResult_t socketCloseComm(void* comm) {
  if (comm != nullptr) closeComm(static_cast<Comm*>(comm));
  return weftSuccess;
}

weftResult_t socketCloseListen(void* listenCommPtr) {
  auto* comm = static_cast<ListenComm*>(listenCommPtr);
  if (comm == nullptr) return weftSuccess;
  for (Pending& pending : comm->pending) ::close(pending.fd);
  for (auto& [id, group] : comm->groups)
    for (int fd : group.fds)
      if (fd >= 0) ::close(fd);
  ::close(comm->fd);
  delete comm;
  return weftSuccess;
}

void socketErrorString(void* comm, char* text, size_t bytes) {
  snprintf(text, bytes, "%s", comm ? static_cast<Comm*>(comm)->errorText().c_str() : "");
}

const weftNet_v1_t kSocketPlugin = {
    "Socket",     socketInit,      socketDevices,   socketGetProperties, socketListen,      socketConnect,
    socketAccept, socketRegMr,     socketDeregMr,   socketIsend,         socketIrecv,       socketIflush,
    socketTest,   socketCloseComm, socketCloseComm, socketCloseListen,   socketErrorString,
};

}  // namespace

const weftNet_v1_t* socketNetPlugin() { return &kSocketPlugin; }

SocketAddress socketHandleAddress(const void* handle) {
  Handle h;
  memcpy(&h, handle, sizeof(h));
  return fromWire(h.address);
}

}  // namespace weft
