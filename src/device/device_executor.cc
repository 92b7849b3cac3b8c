#include "device/device_executor.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/clock.h"
#include "core/logging.h"
#include "core/shared_host_memory.h"
#include "core/types.h"
#include "device/fifo_route.h"
#include "exec/call_match.h"
#include "exec/geometry.h"

namespace weft {

using device::DeviceOp;
using device::Fault;
using device::FaultRecord;
using device::Link;
using device::Work;

static_assert(sizeof(SlotHeader) == sizeof(device::WireHeader), "the device's slot header is the host's");

namespace {

// A rank's board: its registered device buffers, in host memory the
// node's ranks of other processes map, and where it mapped theirs.
//   BoardHeader, kBoardEntries BoardEntry, nranks * kBoardEntries BoardMapping
// An entry is written by its owner only (handle and range first, then
// its generation, with release); a mapping by the board's owner only.
constexpr int kBoardEntries = 64;
struct BoardHeader {
  std::atomic<uint64_t> version;  // bumped on every change of the entries
  uint64_t pad[7];
};
struct BoardEntry {
  std::atomic<uint64_t> generation;  // 0: free; else this registration's, never reused
  uint64_t base, bytes;              // the registered range, in the owner's addresses
  device::MemoryHandle handle;       // its allocation (handle.address: the start in the owner's)
};
struct BoardMapping {
  std::atomic<uint64_t> generation;  // the peer's entry's generation when mapped; 0: none
  uint64_t address;                  // where the peer's allocation lies here
};
static_assert(std::atomic<uint64_t>::is_always_lock_free, "boards are shared between processes");

size_t boardBytes(int nranks) {
  return sizeof(BoardHeader) + kBoardEntries * sizeof(BoardEntry) +
         static_cast<size_t>(nranks) * kBoardEntries * sizeof(BoardMapping);
}
BoardHeader* boardHeader(char* board) { return reinterpret_cast<BoardHeader*>(board); }
BoardEntry* boardEntry(char* board, int entry) {
  return reinterpret_cast<BoardEntry*>(board + sizeof(BoardHeader)) + entry;
}
// The board owner's mapping of `peer`'s entry.
BoardMapping* boardMapping(char* board, int peer, int entry) {
  return reinterpret_cast<BoardMapping*>(board + sizeof(BoardHeader) + kBoardEntries * sizeof(BoardEntry)) +
         static_cast<size_t>(peer) * kBoardEntries + entry;
}

}  // namespace

DeviceExecutor::DeviceExecutor(const ExecutorContext& context, std::shared_ptr<device::Runtime> runtime,
                               const DeviceExecutorConfig& config)
    : context_(context), runtime_(std::move(runtime)), config_(config) {
  shape_.slotBytes = config.slotBytes;
  shape_.llSlotBytes = config.llSlotBytes;
  // Ordered blocks (one per channel), a block per peer and direction of a
  // group's messages, and one for copies to itself.
  maxBlocks_ = context.maxChannels + 2 * context.nranks + 1;
}

Result<std::unique_ptr<DeviceExecutor>> DeviceExecutor::create(const ExecutorContext& context,
                                                               std::shared_ptr<device::Runtime> runtime,
                                                               Bootstrap& bootstrap,
                                                               const DeviceExecutorConfig& config) {
  std::unique_ptr<DeviceExecutor> executor(new DeviceExecutor(context, std::move(runtime), config));
  WEFT_CHECK(executor->connect(bootstrap));
  return executor;
}

Status DeviceExecutor::connect(Bootstrap& bootstrap) {
  device::Runtime& rt = *runtime_;
  int n = context_.nranks, channels = context_.maxChannels;
  size_t fifoBytes = (shape_.bytes() + 255) & ~size_t{255};
  size_t areaBytes = fifoBytes * static_cast<size_t>(n) * static_cast<size_t>(channels);
  // Where each pair's FIFOs live: this rank's view of every peer, exchanged,
  // and host memory for a pair where either side asks for it.
  std::vector<FifoRoute> mine(static_cast<size_t>(n));
  std::vector<char> views(static_cast<size_t>(n) * static_cast<size_t>(n), 0);
  auto remote = [&](int peer) { return context_.transports != nullptr && context_.transports->remote(peer); };
  bool known = config_.busIds.size() == static_cast<size_t>(n) && config_.pids.size() == static_cast<size_t>(n);
  FifoRouteQuery query;
  query.p2pDisabled = config_.stageThroughHost;
  query.emulated = std::string(rt.name()) == "emulated";
  query.topo = config_.topo.get();
  if (known) query.busId = config_.busIds[context_.rank];
  for (int peer = 0; peer < n; ++peer) {
    if (peer == context_.rank) continue;
    if (remote(peer)) {
      remotePeers_.push_back(peer);
      continue;
    }
    if (known) {
      query.peerBusId = config_.busIds[peer];
      query.reachable = rt.reachesPeer(query.peerBusId, config_.pids[peer]);
    }
    mine[peer] = chooseFifoRoute(query);
    views[static_cast<size_t>(context_.rank) * n + peer] = mine[peer].throughHost ? 1 : 0;
  }
  WEFT_CHECK(bootstrap.allGather(views.data(), static_cast<size_t>(n)));
  std::vector<std::vector<bool>> wants(static_cast<size_t>(n), std::vector<bool>(static_cast<size_t>(n)));
  for (int r = 0; r < n; ++r)
    for (int p = 0; p < n; ++p) wants[r][p] = views[static_cast<size_t>(r) * n + p] != 0;
  std::vector<std::vector<bool>> throughHost = fifoRoutesAgreed(wants);
  bool anyHost = false, anyDevice = n == 1;
  for (int peer = 0; peer < n; ++peer)
    if (peer != context_.rank && !remote(peer)) (throughHost[context_.rank][peer] ? anyHost : anyDevice) = true;
  // Both areas are indexed alike (peer, channel); only the peers routed to
  // one use its FIFOs.
  if (anyDevice) {
    Result<void*> area = rt.allocate(areaBytes);
    if (!area.isOk()) return area.status();
    fifos_ = static_cast<char*>(area.value());
  }
  if (anyHost) {
    Result<void*> area = rt.allocateInterprocess(areaBytes);
    if (!area.isOk()) return area.status();
    hostFifos_ = static_cast<char*>(area.value());
  }
  Result<void*> scratch = rt.allocate(static_cast<size_t>(maxBlocks_) * 4 * shape_.scratchSlotBytes());
  if (!scratch.isOk()) return scratch.status();
  scratch_ = static_cast<char*>(scratch.value());
  Result<void*> counters = rt.allocate(3 * sizeof(uint64_t));
  if (!counters.isOk()) return counters.status();
  counters_ = static_cast<uint64_t*>(counters.value());
  Result<void*> abortWord = rt.allocateShared(sizeof(uint32_t));
  if (!abortWord.isOk()) return abortWord.status();
  abortWord_ = static_cast<uint32_t*>(abortWord.value());
  Result<void*> stream = rt.createStream();
  if (!stream.isOk()) return stream.status();
  ownStream_ = stream.value();
  // A board of registered buffers where a rank of another process shares
  // this node (both sides of such a pair have one).
  bool crossProcess = false;
  if (config_.pids.size() == static_cast<size_t>(n))
    for (int peer = 0; peer < n; ++peer)
      if (peer != context_.rank && !remote(peer) && !samePidAs(peer)) crossProcess = true;
  if (crossProcess) {
    Result<void*> board = rt.allocateInterprocess(boardBytes(n));
    if (!board.isOk()) return board.status();
    board_ = static_cast<char*>(board.value());
  }
  // Every rank's FIFO areas and board, mapped here.
  struct Areas {
    device::MemoryHandle device, host, board;
  };
  std::vector<Areas> handles(static_cast<size_t>(n));
  if (board_ != nullptr) {
    Result<device::MemoryHandle> exported = rt.exportInterprocess(board_);
    if (!exported.isOk()) return exported.status();
    handles[context_.rank].board = exported.value();
  }
  if (fifos_ != nullptr) {
    Result<device::MemoryHandle> exported = rt.exportMemory(fifos_);
    if (!exported.isOk()) return exported.status();
    handles[context_.rank].device = exported.value();
  }
  if (hostFifos_ != nullptr) {
    Result<device::MemoryHandle> exported = rt.exportInterprocess(hostFifos_);
    if (!exported.isOk()) return exported.status();
    handles[context_.rank].host = exported.value();
  }
  WEFT_CHECK(bootstrap.allGather(handles.data(), sizeof(Areas)));
  peerBoards_.assign(static_cast<size_t>(n), nullptr);
  seenBoardVersion_.assign(static_cast<size_t>(n), 0);
  for (int peer = 0; board_ != nullptr && peer < n; ++peer) {
    if (peer == context_.rank || remote(peer) || samePidAs(peer)) continue;
    Result<void*> theirs = rt.importInterprocess(handles[peer].board);
    if (!theirs.isOk())
      return WEFT_ERROR(theirs.status().code(), "rank %d: cannot map rank %d's table of registered buffers: %s",
                        context_.rank, peer, theirs.status().message().c_str());
    importedBoards_.emplace_back(theirs.value(), handles[peer].board);
    peerBoards_[peer] = static_cast<char*>(theirs.value());
  }
  std::vector<Link> links(static_cast<size_t>(n) * static_cast<size_t>(channels));
  if (!remotePeers_.empty()) {
    size_t netBytes = 2 * fifoBytes * remotePeers_.size() * static_cast<size_t>(channels);
    Result<void*> area = rt.allocateShared(netBytes);
    if (!area.isOk()) return area.status();
    netFifos_ = static_cast<char*>(area.value());
  }
  for (int peer = 0; peer < n; ++peer) {
    if (peer == context_.rank) continue;
    if (remote(peer)) {
      for (int c = 0; c < channels; ++c) {
        NetLink net;
        net.to = context_.transports->sendTo(peer, c);
        net.from = context_.transports->recvFrom(peer, c);
        net.out = reinterpret_cast<device::Fifo*>(netFifos_ + 2 * netLinks_.size() * fifoBytes);
        net.in = reinterpret_cast<device::Fifo*>(netFifos_ + (2 * netLinks_.size() + 1) * fifoBytes);
        if (net.to == nullptr || net.from == nullptr || net.to->slotBytes() < shape_.slotBytes)
          return WEFT_ERROR(weftInternalError, "rank %d: no net connector to rank %d on channel %d for its slots",
                            context_.rank, peer, c);
        Link& link = links[static_cast<size_t>(peer) * channels + c];
        link.send = net.out;
        link.recv = net.in;
        // GPUDirect RDMA: the kernel writes and reads the connection's own
        // slots in device memory; the bridge only passes counts.
        auto useRing = [&](char* ring, size_t stride, uint64_t count, char** into, uint64_t* intoStride,
                           bool* used) -> Status {
          if (ring == nullptr) return Status::ok();
          if (count != static_cast<uint64_t>(device::kFifoDepth))
            return WEFT_ERROR(weftInternalError, "rank %d: %llu device-memory net slots with rank %d, not %d",
                              context_.rank, static_cast<unsigned long long>(count), peer, device::kFifoDepth);
          *into = ring;
          *intoStride = stride;
          *used = true;
          return Status::ok();
        };
        size_t stride = 0;
        uint64_t count = 0;
        char* ring = net.to->deviceRing(&stride, &count);
        WEFT_CHECK(useRing(ring, stride, count, &link.sendRing, &link.sendRingStride, &net.sendRing));
        ring = net.from->deviceRing(&stride, &count);
        WEFT_CHECK(useRing(ring, stride, count, &link.recvRing, &link.recvRingStride, &net.recvRing));
        netLinks_.push_back(net);
      }
      WEFT_INFO(kLogInit, "rank %d <-> rank %d: over the network, %s", context_.rank, peer,
                netLinks_.back().sendRing ? "slots in device memory the NIC reads and writes (GPUDirect RDMA)"
                                          : "FIFOs in host memory moved by the net bridge");
      continue;
    }
    bool host = throughHost[context_.rank][peer];
    char* base = nullptr;
    if (host) {
      Result<void*> theirs = rt.importInterprocess(handles[peer].host);
      if (!theirs.isOk())
        return WEFT_ERROR(theirs.status().code(), "rank %d: cannot map rank %d's FIFOs in host memory: %s",
                          context_.rank, peer, theirs.status().message().c_str());
      importedHost_.emplace_back(theirs.value(), handles[peer].host);
      base = static_cast<char*>(theirs.value());
    } else {
      Result<void*> theirs = rt.importMemory(handles[peer].device);
      if (!theirs.isOk())
        return WEFT_ERROR(theirs.status().code(), "rank %d: cannot map rank %d's FIFOs: %s", context_.rank, peer,
                          theirs.status().message().c_str());
      if (theirs.value() != reinterpret_cast<void*>(handles[peer].device.address)) imported_.push_back(theirs.value());
      base = static_cast<char*>(theirs.value());
    }
    char* own = host ? hostFifos_ : fifos_;
    for (int c = 0; c < channels; ++c) {
      Link& link = links[static_cast<size_t>(peer) * channels + c];
      // My FIFO from peer on c is slot (peer, c) of my area; my FIFO to
      // peer is slot (me, c) of theirs.
      link.recv = reinterpret_cast<device::Fifo*>(own + (static_cast<size_t>(peer) * channels + c) * fifoBytes);
      link.send =
          reinterpret_cast<device::Fifo*>(base + (static_cast<size_t>(context_.rank) * channels + c) * fifoBytes);
    }
    WEFT_INFO(kLogInit, "rank %d <-> rank %d: FIFOs in %s (%s)", context_.rank, peer,
              host ? "host memory" : "device memory",
              host && !mine[peer].throughHost ? "the peer's choice" : mine[peer].why.c_str());
  }
  Result<void*> table = rt.allocate(links.size() * sizeof(Link));
  if (!table.isOk()) return table.status();
  links_ = static_cast<Link*>(table.value());
  WEFT_CHECK(rt.toDevice(links_, links.data(), links.size() * sizeof(Link)));
  // Nobody sends before every peer has mapped the FIFOs it writes.
  int token = 0;
  std::vector<int> all(static_cast<size_t>(n));
  all[context_.rank] = token;
  WEFT_CHECK(bootstrap.allGather(all.data(), sizeof(int)));
  if (!netLinks_.empty()) {
    // GPUDirect RDMA (the NIC reading and writing GPU memory) needs the
    // driver's peer-memory module; this version stages through host memory
    // either way, and says which.
    bool peerMemory = access("/sys/module/nvidia_peermem", F_OK) == 0 || access("/sys/module/nv_peer_mem", F_OK) == 0;
    WEFT_INFO(kLogInit, "rank %d: %zu net link(s): slots staged through host memory by the net bridge (%s)",
              context_.rank, netLinks_.size(),
              peerMemory ? "nvidia_peermem is loaded, but GPUDirect RDMA is not used by this version"
                         : "no GPU peer-memory module: GPUDirect RDMA unavailable");
    netBridge_ = std::thread([this] { bridgeNet(); });
  }
  WEFT_INFO(kLogInit, "rank %d: %s device %d: %d channel(s), FIFOs of %d x %zu bytes (LL %zu) from %d peer(s)",
            context_.rank, rt.name(), rt.device(), channels, device::kFifoDepth, shape_.slotBytes, shape_.llSlotBytes,
            n - 1);
  return Status::ok();
}

// Moves what the kernel posted for remote peers to their connectors, and
// what arrived from them into the kernel's FIFOs; true when a slot moved.
bool DeviceExecutor::pumpNet(NetLink& link) {
  bool moved = false;
  if (link.sendRing) {
    // The kernel filled the connection's slot itself: it leaves as it is.
    while (link.forwarded < __atomic_load_n(&link.out->tail, __ATOMIC_ACQUIRE)) {
      const device::WireHeader& header = link.out->headers[link.forwarded % device::kFifoDepth];
      if (!link.to->postFilled(header.bytes)) break;
      ++link.forwarded;
      moved = true;
    }
    uint64_t sent = link.to->completed();  // the NIC is done with these: the kernel may refill them
    if (sent != __atomic_load_n(&link.out->head, __ATOMIC_RELAXED)) {
      __atomic_store_n(&link.out->head, sent, __ATOMIC_RELEASE);
      moved = true;
    }
  }
  if (link.recvRing) {
    uint64_t arrived = link.from->arrivedCount();  // in the kernel's slots, visible to the device
    if (arrived != link.delivered) {
      link.delivered = arrived;
      __atomic_store_n(&link.in->tail, arrived, __ATOMIC_RELEASE);
      moved = true;
    }
    link.from->releaseUpTo(__atomic_load_n(&link.in->head, __ATOMIC_ACQUIRE));
  }
  if (link.sendRing && link.recvRing) return moved;
  while (!link.sendRing && link.forwarded < __atomic_load_n(&link.out->tail, __ATOMIC_ACQUIRE)) {
    const device::WireHeader& header = link.out->headers[link.forwarded % device::kFifoDepth];
    void* slot = link.to->trySlot(header.bytes);
    if (slot == nullptr) break;  // the peer has not released one yet
    memcpy(slot, shape_.payload(link.out, link.forwarded), header.bytes);
    SlotHeader wire;
    memcpy(&wire, &header, sizeof(wire));
    link.to->post(wire);
    ++link.forwarded;
    __atomic_store_n(&link.out->head, link.forwarded, __ATOMIC_RELEASE);  // the kernel may refill it
    moved = true;
  }
  while (!link.recvRing && link.delivered - __atomic_load_n(&link.in->head, __ATOMIC_ACQUIRE) < device::kFifoDepth) {
    const SlotHeader* header = link.from->tryHeader();
    if (header == nullptr) break;
    memcpy(&link.in->headers[link.delivered % device::kFifoDepth], header, sizeof(device::WireHeader));
    memcpy(shape_.payload(link.in, link.delivered), link.from->payload(), header->bytes);
    link.from->release();
    ++link.delivered;
    __atomic_store_n(&link.in->tail, link.delivered, __ATOMIC_RELEASE);
    moved = true;
  }
  return moved;
}

void DeviceExecutor::bridgeNet() {
  uint64_t idle = 0;
  uint64_t lastCheck = monotonicNanos();
  while (!netStop_.load(std::memory_order_acquire)) {
    bool moved = false;
    for (NetLink& link : netLinks_) moved = pumpNet(link) || moved;
    // A peer whose connection broke (it died, or closed) fails the calls now
    // rather than at the device's timeout: the kernels waiting on it stop.
    if (uint64_t now = monotonicNanos(); now - lastCheck > 10000000) {
      lastCheck = now;
      for (int peer : remotePeers_) {
        Status alive = context_.transports->checkPeerAlive(peer);
        if (alive.isOk()) continue;
        {
          std::lock_guard<std::mutex> lock(bridgeMutex_);
          bridgeError_ = WEFT_ERROR(weftRemoteError, "rank %d: the connection to rank %d failed: %s", context_.rank,
                                    peer, alive.message().c_str());
        }
        __atomic_store_n(abortWord_, 1, __ATOMIC_RELEASE);
        return;
      }
    }
    if (moved) {
      idle = 0;
    } else if (++idle > context_.spinCount) {
      // Nothing moves between calls: sleep a little instead of spinning.
      std::this_thread::sleep_for(std::chrono::microseconds(idle > 100000 ? 200 : 20));
    } else {
      std::this_thread::yield();
    }
  }
}

DeviceExecutor::~DeviceExecutor() {
  stop();
  netStop_.store(true, std::memory_order_release);
  if (netBridge_.joinable()) netBridge_.join();
  device::Runtime& rt = *runtime_;
  for (auto& [plan, dp] : plans_) {
    rt.free(dp.steps);
    rt.free(dp.channelStart);
  }
  for (void* p : imported_) rt.closeImported(p);
  for (auto& [p, handle] : importedHost_) rt.closeInterprocess(p, handle);
  for (auto& [key, mapped] : mappedRegistrations_) rt.closeRange(mapped.base, mapped.handle);
  for (auto& [p, handle] : importedBoards_) rt.closeInterprocess(p, handle);
  rt.freeInterprocess(board_);
  for (void* p : captured_) rt.freeShared(p);
  for (void* p : capturedDevice_) rt.free(p);
  for (auto& [bytes, p] : spareShared_) rt.freeShared(p);
  for (auto& [bytes, p] : spareDevice_) rt.free(p);
  rt.free(links_);
  rt.free(fifos_);
  rt.freeInterprocess(hostFifos_);
  if (netFifos_ != nullptr) rt.freeShared(netFifos_);
  rt.free(scratch_);
  rt.free(counters_);
  if (abortWord_ != nullptr) rt.freeShared(abortWord_);
  if (ownStream_ != nullptr) rt.destroyStream(ownStream_);
}

int DeviceExecutor::deviceMemoryNetLinks() const {
  return static_cast<int>(
      std::count_if(netLinks_.begin(), netLinks_.end(), [](const NetLink& l) { return l.sendRing && l.recvRing; }));
}

int DeviceExecutor::stagedNetLinks() const {
  return static_cast<int>(
      std::count_if(netLinks_.begin(), netLinks_.end(), [](const NetLink& l) { return !l.sendRing && !l.recvRing; }));
}

bool DeviceExecutor::samePidAs(int peer) const {
  if (peer == context_.rank) return true;
  // A process id names a process on its own host only.
  if (context_.transports != nullptr && context_.transports->remote(peer)) return false;
  if (config_.pids.size() != static_cast<size_t>(context_.nranks)) return config_.samePeerProcess;
  return config_.pids[peer] == config_.pids[context_.rank];
}

Result<int> DeviceExecutor::registerBuffer(const void* p, size_t bytes) {
  if (board_ == nullptr) return -1;  // every peer of this node shares the process
  Result<device::MemoryHandle> handle = runtime_->exportRange(p, bytes);
  if (!handle.isOk()) return handle.status();
  std::lock_guard<std::mutex> lock(mutex_);
  for (int e = 0; e < kBoardEntries; ++e) {
    BoardEntry* entry = boardEntry(board_, e);
    if (entry->generation.load(std::memory_order_relaxed) != 0) continue;
    entry->base = reinterpret_cast<uint64_t>(p);
    entry->bytes = bytes;
    entry->handle = handle.value();
    entry->generation.store(nextGeneration_++, std::memory_order_release);
    boardHeader(board_)->version.fetch_add(1, std::memory_order_release);
    WEFT_INFO(kLogInit, "rank %d: registered %p (%zu bytes) for peers of other processes (entry %d)", context_.rank, p,
              bytes, e);
    return e;
  }
  return WEFT_ERROR(weftInvalidUsage, "the table of registered device buffers is full (%d)", kBoardEntries);
}

void DeviceExecutor::deregisterBuffer(int entry) {
  if (board_ == nullptr || entry < 0 || entry >= kBoardEntries) return;
  std::lock_guard<std::mutex> lock(mutex_);
  boardEntry(board_, entry)->generation.store(0, std::memory_order_release);
  boardHeader(board_)->version.fetch_add(1, std::memory_order_release);
}

void DeviceExecutor::mapPeerRegistrations() {
  device::Runtime& rt = *runtime_;
  for (int peer = 0; peer < context_.nranks; ++peer) {
    char* theirs = peerBoards_.empty() ? nullptr : peerBoards_[peer];
    if (theirs == nullptr) continue;
    uint64_t version = boardHeader(theirs)->version.load(std::memory_order_acquire);
    if (version == seenBoardVersion_[peer]) continue;
    seenBoardVersion_[peer] = version;
    for (int e = 0; e < kBoardEntries; ++e) {
      BoardEntry* entry = boardEntry(theirs, e);
      uint64_t generation = entry->generation.load(std::memory_order_acquire);
      BoardMapping* mine = boardMapping(board_, peer, e);
      auto it = mappedRegistrations_.find({peer, e});
      if (it != mappedRegistrations_.end() && it->second.generation == generation) continue;
      if (it != mappedRegistrations_.end()) {
        // Withdrawn or replaced: the peer no longer publishes from it.
        mine->generation.store(0, std::memory_order_release);
        rt.closeRange(it->second.base, it->second.handle);
        mappedRegistrations_.erase(it);
      }
      if (generation == 0) continue;
      device::MemoryHandle handle = entry->handle;
      if (entry->generation.load(std::memory_order_acquire) != generation) continue;  // changing: next time
      Result<void*> base = rt.importRange(handle);
      if (!base.isOk()) {
        WEFT_WARN("rank %d: cannot map rank %d's registered buffer (entry %d): %s; its slots carry data", context_.rank,
                  peer, e, base.status().message().c_str());
        continue;
      }
      mappedRegistrations_[{peer, e}] = MappedRegistration{generation, base.value(), handle};
      mine->address = reinterpret_cast<uint64_t>(base.value());
      mine->generation.store(generation, std::memory_order_release);
      WEFT_INFO(kLogInit, "rank %d: mapped rank %d's registered buffer (entry %d, %llu bytes) at %p", context_.rank,
                peer, e, static_cast<unsigned long long>(entry->bytes), base.value());
    }
  }
}

int64_t DeviceExecutor::addressDelta(int peer, const void* p, size_t bytes) const {
  if (peer == context_.rank || samePidAs(peer)) return 0;
  char* theirs = peerBoards_.empty() ? nullptr : peerBoards_[peer];
  if (theirs == nullptr || p == nullptr) return device::kNoAddress;  // on another node
  uint64_t at = reinterpret_cast<uint64_t>(p);
  for (int e = 0; e < kBoardEntries; ++e) {
    BoardEntry* entry = boardEntry(board_, e);
    uint64_t generation = entry->generation.load(std::memory_order_relaxed);
    if (generation == 0 || !rangeHolds(entry->base, entry->bytes, at, bytes)) continue;
    BoardMapping* mapped = boardMapping(theirs, context_.rank, e);
    if (mapped->generation.load(std::memory_order_acquire) != generation) return device::kNoAddress;
    return static_cast<int64_t>(mapped->address - entry->handle.address);
  }
  return device::kNoAddress;
}

bool usesLowLatency(const DeviceExecutorConfig& config, const OpDesc& op) {
  if (config.forceProtocol >= 0) return config.forceProtocol == 1;
  if (config.llThreshold >= 0) return callBytes(op) <= static_cast<size_t>(config.llThreshold);
  return op.lowLatency;
}

Result<DeviceExecutor::DevicePlan> DeviceExecutor::devicePlan(const Plan* plan) {
  auto it = plans_.find(plan);
  if (it != plans_.end()) return it->second;
  DevicePlan dp;
  Result<void*> steps = runtime_->allocate(std::max<size_t>(1, plan->steps.size()) * sizeof(Step));
  if (!steps.isOk()) return steps.status();
  dp.steps = static_cast<Step*>(steps.value());
  Result<void*> starts = runtime_->allocate(plan->channelStart.size() * sizeof(uint32_t));
  if (!starts.isOk()) {
    runtime_->free(dp.steps);
    return starts.status();
  }
  dp.channelStart = static_cast<uint32_t*>(starts.value());
  WEFT_CHECK(runtime_->toDevice(dp.steps, plan->steps.data(), plan->steps.size() * sizeof(Step)));
  WEFT_CHECK(runtime_->toDevice(dp.channelStart, plan->channelStart.data(), plan->channelStart.size() * 4));
  plans_[plan] = dp;
  return dp;
}

uint64_t DeviceExecutor::submit(const OpDesc* ops, size_t count) {
  std::lock_guard<std::mutex> lock(mutex_);
  submitted_ += count;  // sequence numbers count operations
  uint64_t seq = submitted_;
  launches_.emplace_back();
  Launch& launch = launches_.back();
  launch.seq = seq;
  launch.ops.assign(ops, ops + count);
  const OpDesc& last = ops[count - 1];
  launch.call = makeCallRef(last.collective, last.plan && last.plan->concurrent ? last.peer : -1, last.opSeq);
  if (context_.abortFlag != nullptr && context_.abortFlag->load()) __atomic_store_n(abortWord_, 1, __ATOMIC_RELEASE);
  if (launches_.size() == 1) inProgress_.store(launch.call, std::memory_order_release);
  if (failed_ || stopped_) return seq;  // completes at once, failing
  Status status = launchGroup(ops, count, &launch);
  if (!status.isOk()) fail(status);
  return seq;
}

Status DeviceExecutor::launchGroup(const OpDesc* ops, size_t count, Launch* launch) {
  device::Runtime& rt = *runtime_;
  void* stream = ops[0].stream;
  for (size_t i = 1; i < count; ++i)
    if (ops[i].stream != stream)
      return WEFT_ERROR(weftInvalidUsage,
                        "rank %d: a group's operations on one communicator must share a stream (%p and %p)",
                        context_.rank, stream, ops[i].stream);
  bool nullStream = stream == nullptr;
  if (nullStream) stream = ownStream_;

  // Blocks: copies to itself, then one per (peer, direction) of the
  // messages in posting order, then one per channel of the ordered ops.
  std::vector<int> blockOfKey(2 * static_cast<size_t>(context_.nranks), -1);
  std::vector<std::vector<int>> concurrentBlocks;
  std::vector<const OpDesc*> selfSends, selfRecvs;
  int orderedBlocks = 0;
  for (size_t i = 0; i < count; ++i) {
    const Plan& plan = *ops[i].plan;
    if (!plan.concurrent) {
      orderedBlocks = std::max(orderedBlocks, plan.nChannels);
      continue;
    }
    int peer = concurrentPeer(plan);
    bool sends = concurrentSends(plan);
    if (peer == context_.rank) {
      (sends ? selfSends : selfRecvs).push_back(&ops[i]);
      continue;
    }
    int& block = blockOfKey[2 * static_cast<size_t>(peer) + (sends ? 0 : 1)];
    if (block < 0) {
      block = static_cast<int>(concurrentBlocks.size());
      concurrentBlocks.emplace_back();
    }
    concurrentBlocks[static_cast<size_t>(block)].push_back(static_cast<int>(i));
  }
  std::vector<SelfCopy> copies;
  WEFT_CHECK(pairSelfMessages(selfSends, selfRecvs, context_.rank, &copies));
  if (!copies.empty()) concurrentBlocks.insert(concurrentBlocks.begin(), std::vector<int>{});
  int nConcurrent = static_cast<int>(concurrentBlocks.size());
  int blocks = nConcurrent + orderedBlocks;
  if (blocks > maxBlocks_)
    return WEFT_ERROR(weftInternalError, "rank %d: a group needs %d blocks, more than the %d planned", context_.rank,
                      blocks, maxBlocks_);

  // The launch's description, in memory the device reads.
  size_t opsAt = (sizeof(Work) + 63) & ~size_t{63};
  size_t listAt = opsAt + count * sizeof(DeviceOp);
  size_t startsAt = listAt + count * sizeof(int);
  size_t copiesAt = (startsAt + (static_cast<size_t>(nConcurrent) + 1) * sizeof(int) + 15) & ~size_t{15};
  size_t faultAt = (copiesAt + copies.size() * sizeof(Work::SelfCopy) + 63) & ~size_t{63};
  static_assert(sizeof(Work::SelfCopy) == sizeof(SelfCopy));
  // Per op, where its buffers lie for each peer, when not every peer shares
  // this process (DeviceOp::addressDelta).
  bool perPeerAddresses = !config_.samePeerProcess;
  size_t deltasAt = faultAt + ((sizeof(FaultRecord) + 63) & ~size_t{63});
  size_t deltasPerOp = 2 * static_cast<size_t>(context_.nranks);
  size_t total = perPeerAddresses ? deltasAt + count * deltasPerOp * sizeof(int64_t) : faultAt + sizeof(FaultRecord);
  Result<void*> shared = takeSpare(spareShared_, &total, true);
  if (!shared.isOk()) return shared.status();
  launch->work = shared.value();
  launch->workBytes = total;
  char* base = static_cast<char*>(launch->work);
  auto* work = new (base) Work();
  auto* dops = reinterpret_cast<DeviceOp*>(base + opsAt);
  auto* list = reinterpret_cast<int*>(base + listAt);
  auto* starts = reinterpret_cast<int*>(base + startsAt);
  auto* selfCopies = reinterpret_cast<Work::SelfCopy*>(base + copiesAt);
  launch->fault = new (base + faultAt) FaultRecord();
  auto* deltas = perPeerAddresses ? reinterpret_cast<int64_t*>(base + deltasAt) : nullptr;
  if (board_ != nullptr) mapPeerRegistrations();

  for (size_t i = 0; i < count; ++i) {
    const OpDesc& op = ops[i];
    const Plan& plan = *op.plan;
    Result<DevicePlan> dp = devicePlan(&plan);
    if (!dp.isOk()) return dp.status();
    DeviceOp& d = *new (&dops[i]) DeviceOp();
    d.steps = dp.value().steps;
    d.channelStart = dp.value().channelStart;
    d.nChannels = plan.nChannels;
    d.nranks = plan.nranks;
    d.redop = op.op;
    d.type = op.type;
    d.in = static_cast<const char*>(op.send);
    d.out = static_cast<char*>(op.recv);
    size_t typeBytes = typeSize(op.type);
    d.lowLatency = usesLowLatency(config_, op);
    Geometry g = geometryFor(op, plan, d.lowLatency ? shape_.llSlotBytes : shape_.slotBytes);
    d.count = g.count;
    d.typeBytes = g.typeBytes;
    d.blockCount = g.blockCount;
    d.channelCount = g.channelCount;
    d.sliceCount = g.sliceCount;
    d.iterations = g.iterations;
    d.clampToCount = g.clampToCount;
    d.inputAllBlocks = plan.inputShape == BufferShape::AllBlocks;
    d.outputAllBlocks = plan.outputShape == BufferShape::AllBlocks;
    d.emptyMessages = plan.emptyMessages;
    d.average = op.op == weftAvg && plan.nranks > 1;
    d.byAddress = context_.sendsByAddress(op.count * typeBytes) && !d.lowLatency;
    d.concurrent = plan.concurrent;
    d.matchRedop = collectiveReduces(op.collective);
    d.matchRoot = collectiveHasRoot(op.collective);
    d.matchAlgorithm = true;
    SlotHeader header = slotHeaderFor(op, 0);
    memcpy(&d.header, &header, sizeof(header));
    if (op.preMulSum) {
      size_t elements = plan.inputElements(op.count);
      if (elements > 0) {
        size_t scaledBytes = elements * typeBytes;
        Result<void*> scaled = takeSpare(spareDevice_, &scaledBytes, false);
        if (!scaled.isOk()) return scaled.status();
        launch->premul.emplace_back(scaled.value(), scaledBytes);
        d.preMulSum = true;
        d.premulSource = d.in;
        d.in = static_cast<const char*>(scaled.value());
        d.premulElements = elements;
        d.scalarBits = op.preMulScalar;
        d.scalarAt = op.preMulScalarAt;
      }
    }
    if (d.byAddress && perPeerAddresses) {
      // Each peer reads what it can: a peer of this process anything, one of
      // another process the registered buffers it has mapped, one on another
      // node nothing (the net bridge moves slots, not addresses).
      int64_t* mine = deltas + i * deltasPerOp;
      size_t inBytes = plan.inputElements(op.count) * typeBytes, outBytes = plan.outputElements(op.count) * typeBytes;
      bool any = false, acrossProcesses = false;
      for (int peer = 0; peer < context_.nranks; ++peer) {
        mine[2 * peer] = addressDelta(peer, d.in, inBytes);
        mine[2 * peer + 1] = addressDelta(peer, d.out, outBytes);
        bool reads = mine[2 * peer] != device::kNoAddress || mine[2 * peer + 1] != device::kNoAddress;
        if (reads && peer != context_.rank) {
          any = true;
          if (!samePidAs(peer)) acrossProcesses = true;
        }
      }
      d.addressDelta = mine;
      d.byAddress = any;
      if (acrossProcesses) crossProcessAddressOps_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  int at = 0;
  for (int b = 0; b < nConcurrent; ++b) {
    starts[b] = at;
    for (int i : concurrentBlocks[static_cast<size_t>(b)]) list[at++] = i;
  }
  starts[nConcurrent] = at;
  for (size_t i = 0; i < copies.size(); ++i) selfCopies[i] = {copies[i].src, copies[i].dst, copies[i].bytes};

  work->ops = dops;
  work->nOps = static_cast<int>(count);
  work->rank = context_.rank;
  work->nranks = context_.nranks;
  work->maxChannels = context_.maxChannels;
  work->links = links_;
  work->shape = shape_;
  work->scratch = scratch_;
  work->nConcurrentBlocks = nConcurrent;
  work->concurrentOps = list;
  work->concurrentStart = starts;
  work->nOrderedBlocks = orderedBlocks;
  work->selfCopies = selfCopies;
  work->nSelfCopies = static_cast<int>(copies.size());
  work->concurrentDone = &counters_[0];
  work->orderedBarrier = &counters_[1];
  work->exited = &counters_[2];
  work->nBlocks = blocks;
  work->fault = launch->fault;
  work->abortFlag = abortWord_;
  work->timeoutNanos = context_.timeoutNanos;
  if (blocks == 0) return Status::ok();  // nothing to run (messages of no elements to itself)

  // Captured into a CUDA graph: the launch runs at each replay, its
  // description (which holds no running count) kept as long as the
  // communicator; nothing runs now, so the call completes at once.
  if (rt.capturing(stream)) {
    WEFT_CHECK(rt.launch(work, blocks, stream));
    captured_.push_back(launch->work);
    capturedFaults_.push_back(launch->fault);
    for (auto& [p, bytes] : launch->premul) capturedDevice_.push_back(p);
    launch->work = nullptr;
    launch->premul.clear();
    return Status::ok();
  }
  // One communicator's launches run one after another whatever streams
  // they are posted on: they share the links.
  if (haveLastEvent_ && stream != lastStream_) WEFT_CHECK(rt.streamWait(stream, lastEvent_));
  if (nullStream) WEFT_CHECK(rt.orderAfterNullStream(stream));
  WEFT_CHECK(rt.launch(work, blocks, stream));
  Result<device::Event> event = rt.record(stream);
  if (!event.isOk()) return event.status();
  launch->event = event.value();
  launch->launched = true;
  lastStream_ = stream;
  lastEvent_ = launch->event;
  haveLastEvent_ = true;
  return Status::ok();
}

void DeviceExecutor::fail(const Status& status) const {
  if (failed_) return;
  failed_ = true;
  error_ = status;
  // Launches queued behind the failed one stop at their first wait instead
  // of each waiting out the timeout on a peer that is gone.
  if (abortWord_ != nullptr) __atomic_store_n(abortWord_, 1, __ATOMIC_RELEASE);
}

Result<void*> DeviceExecutor::takeSpare(std::multimap<size_t, void*>& spare, size_t* bytes, bool shared) {
  auto it = spare.lower_bound(*bytes);
  if (it != spare.end()) {
    *bytes = it->first;
    void* p = it->second;
    spare.erase(it);
    return p;
  }
  return shared ? runtime_->allocateShared(*bytes) : runtime_->allocate(*bytes);
}

void DeviceExecutor::release(Launch& launch) const {
  // A captured launch's memory stays with the graphs (captured_).
  for (auto& [p, bytes] : launch.premul) spareDevice_.emplace(bytes, p);
  launch.premul.clear();
  if (launch.work != nullptr) spareShared_.emplace(launch.workBytes, launch.work);
  launch.work = nullptr;
}

// What the device reported for a launch that has finished.
Status DeviceExecutor::finish(Launch& launch) const {
  if (launch.work == nullptr) return Status::ok();  // captured: its faults show in the replays' results
  const FaultRecord& f = *launch.fault;
  auto fault = static_cast<Fault>(__atomic_load_n(&f.fault, __ATOMIC_ACQUIRE));
  if (fault == Fault::None) return Status::ok();
  const OpDesc& op = launch.ops[static_cast<size_t>(std::max(0, f.op))];
  std::string call = describeCallRef(makeCallRef(op.collective, op.plan->concurrent ? op.peer : -1, op.opSeq));
  switch (fault) {
    case Fault::Mismatch: {
      SlotHeader got;
      memcpy(&got, &f.got, sizeof(got));
      return checkSlotHeader(got, op, f.bytes, context_.rank, f.peer);
    }
    case Fault::Aborted: {
      std::lock_guard<std::mutex> lock(bridgeMutex_);
      if (!bridgeError_.isOk()) return bridgeError_;
      return WEFT_ERROR(weftInvalidUsage, "rank %d: %s was aborted on the device", context_.rank, call.c_str());
    }
    case Fault::Timeout: {
      Status timeout =
          f.peer >= 0 ? WEFT_ERROR(weftTimeout, "rank %d: %s timed out on the device after %.0f s waiting for rank %d",
                                   context_.rank, call.c_str(), context_.timeoutNanos / 1e9, f.peer)
                      : WEFT_ERROR(weftTimeout, "rank %d: %s timed out on the device after %.0f s", context_.rank,
                                   call.c_str(), context_.timeoutNanos / 1e9);
      return context_.explainTimeout ? context_.explainTimeout(timeout) : timeout;
    }
    default:
      return WEFT_ERROR(weftInternalError, "rank %d: %s: unknown device fault %u", context_.rank, call.c_str(),
                        f.fault);
  }
}

// Faults of replayed graphs: the device records them in the captured
// launch's description, where no event leads the host; they are looked for
// whenever the host checks on its work.
void DeviceExecutor::checkReplays() const {
  for (const FaultRecord* f : capturedFaults_) {
    uint32_t fault = __atomic_load_n(&f->fault, __ATOMIC_ACQUIRE);
    if (fault == 0) continue;
    const char* what = fault == static_cast<uint32_t>(Fault::Timeout)    ? "timed out"
                       : fault == static_cast<uint32_t>(Fault::Mismatch) ? "received a slot of another call"
                                                                         : "was aborted";
    fail(WEFT_ERROR(fault == static_cast<uint32_t>(Fault::Timeout) ? weftTimeout : weftInvalidUsage,
                    "rank %d: a replay of a call captured into a CUDA graph %s on the device (peer %d)", context_.rank,
                    what, f->peer));
    return;
  }
}

Status DeviceExecutor::retire(uint64_t seq, bool blocking) const {
  if (!capturedFaults_.empty() && !failed_) checkReplays();
  uint64_t started = monotonicNanos();
  // The device enforces the timeout itself; this is for work that never
  // started (a stream held up by other work).
  uint64_t patience = context_.timeoutNanos == 0 ? 0 : 2 * context_.timeoutNanos + 5000000000ull;
  uint64_t spins = 0;
  while (!launches_.empty() && completed_ < seq) {
    Launch& launch = launches_.front();
    if (launch.launched) {
      Result<bool> done = runtime_->done(launch.event);
      if (!done.isOk()) {
        fail(done.status());
      } else if (!done.value()) {
        if (!blocking) return Status::ok();
        if (context_.abortFlag != nullptr && context_.abortFlag->load())
          __atomic_store_n(abortWord_, 1, __ATOMIC_RELEASE);
        if (patience != 0 && monotonicNanos() - started > patience) {
          fail(WEFT_ERROR(weftTimeout, "rank %d: device work of group %llu did not finish in %.0f s", context_.rank,
                          static_cast<unsigned long long>(launch.seq), patience / 1e9));
          return error_;
        }
        if (++spins < 100)
          std::this_thread::yield();
        else
          std::this_thread::sleep_for(std::chrono::microseconds(50));
        continue;
      }
      runtime_->releaseEvent(launch.event);
      Status status = finish(launch);
      if (!status.isOk()) fail(status);
    }
    release(launch);
    completed_ = launch.seq;
    lastCompleted_.store(launch.call, std::memory_order_release);
    launches_.pop_front();
    inProgress_.store(launches_.empty() ? kNoCall : launches_.front().call, std::memory_order_release);
  }
  return failed_ ? error_ : Status::ok();
}

Status DeviceExecutor::wait(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  return retire(seq, true);
}

bool DeviceExecutor::test(uint64_t seq) const {
  std::lock_guard<std::mutex> lock(mutex_);
  (void)retire(seq, false);
  return failed_ || completed_ >= seq;
}

Status DeviceExecutor::asyncError() const {
  std::lock_guard<std::mutex> lock(mutex_);
  (void)retire(submitted_, false);
  return failed_ ? error_ : Status::ok();
}

uint64_t DeviceExecutor::submitted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return submitted_;
}

void DeviceExecutor::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopped_) return;
  stopped_ = true;
  // Launches still waiting on peers end at their next poll.
  if (!launches_.empty() && abortWord_ != nullptr && !failed_) {
    // Let finished work finish; what still waits is stopped.
    (void)retire(submitted_, false);
    if (!launches_.empty()) __atomic_store_n(abortWord_, 1, __ATOMIC_RELEASE);
  }
  (void)retire(submitted_, true);
  for (Launch& launch : launches_) release(launch);
  launches_.clear();
}

CallRef DeviceExecutor::lastCompleted() const { return lastCompleted_.load(std::memory_order_acquire); }

CallRef DeviceExecutor::inProgress() const { return inProgress_.load(std::memory_order_acquire); }

}  // namespace weft
