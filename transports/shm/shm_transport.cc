#include "transports/shm/shm_transport.h"

#include "core/fault.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/logging.h"

namespace weft {
namespace {

constexpr uint64_t kControlMagic = 0x7765667453484d31ull;  // "weftSHM1"
constexpr size_t kAlign = 4096;

size_t roundUp(size_t value, size_t align) { return (value + align - 1) / align * align; }

struct alignas(64) FifoCounters {
  std::atomic<uint64_t> tail;
  char pad0[56];
  std::atomic<uint64_t> head;
  char pad1[56];
};

// One cache line per slot: the header, the sequence number that publishes it
// (written last), and room for a small payload.
struct alignas(64) PaddedHeader {
  SlotHeader header;
  std::atomic<uint64_t> seq;
  char inlineData[kInlinePayloadBytes];
};
static_assert(sizeof(PaddedHeader) == 64, "a slot header is one cache line");

struct FifoView {
  FifoCounters* counters;
  PaddedHeader* headers;
  char* data;
};

FifoView viewAt(char* base, int nSlots) {
  FifoView view;
  view.counters = reinterpret_cast<FifoCounters*>(base);
  view.headers = reinterpret_cast<PaddedHeader*>(base + sizeof(FifoCounters));
  view.data = base + roundUp(sizeof(FifoCounters) + sizeof(PaddedHeader) * nSlots, kAlign);
  return view;
}

class ShmSend final : public SendConnector {
 public:
  ShmSend(FifoView view, int nSlots, size_t slotBytes, int peer)
      : view_(view), nSlots_(static_cast<uint64_t>(nSlots)), slotBytes_(slotBytes), peer_(peer) {}
  void* trySlot(size_t bytes) override {
    if (tail_ - headSeen_ >= nSlots_) {
      headSeen_ = view_.counters->head.load(std::memory_order_acquire);
      if (tail_ - headSeen_ >= nSlots_) return nullptr;
    }
    uint64_t index = tail_ % nSlots_;
    if (bytes <= kInlinePayloadBytes) return view_.headers[index].inlineData;
    return view_.data + index * slotBytes_;
  }
  void post(const SlotHeader& header) override {
    PaddedHeader& slot = view_.headers[tail_ % nSlots_];
    slot.header = header;
    ++tail_;
    slot.seq.store(tail_, std::memory_order_release);
  }
  size_t slotBytes() const override { return slotBytes_; }
  int peer() const override { return peer_; }
  bool drained() override {
    if (headSeen_ != tail_) headSeen_ = view_.counters->head.load(std::memory_order_acquire);
    return headSeen_ == tail_;
  }

 private:
  FifoView view_;
  uint64_t nSlots_;
  size_t slotBytes_;
  int peer_;
  uint64_t tail_ = 0;
  uint64_t headSeen_ = 0;
};

class ShmRecv final : public RecvConnector {
 public:
  ShmRecv(FifoView view, int nSlots, size_t slotBytes, int peer)
      : view_(view), nSlots_(static_cast<uint64_t>(nSlots)), slotBytes_(slotBytes), peer_(peer) {}
  const SlotHeader* tryHeader() override {
    PaddedHeader& slot = view_.headers[head_ % nSlots_];
    if (slot.seq.load(std::memory_order_acquire) != head_ + 1) return nullptr;
    return &slot.header;
  }
  const void* payload() const override {
    uint64_t index = head_ % nSlots_;
    const PaddedHeader& slot = view_.headers[index];
    if (slot.header.address != 0) return reinterpret_cast<const void*>(slot.header.address);
    if (slot.header.bytes <= kInlinePayloadBytes) return slot.inlineData;
    return view_.data + index * slotBytes_;
  }
  void release() override {
    ++head_;
    view_.counters->head.store(head_, std::memory_order_release);
  }
  int peer() const override { return peer_; }

 private:
  FifoView view_;
  uint64_t nSlots_;
  size_t slotBytes_;
  int peer_;
  uint64_t head_ = 0;
};

constexpr int kNameBytes = 64;
constexpr int kMaxRegistrations = 64;  // per rank, at once

bool processAlive(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  // A killed child stays a zombie until its launcher reaps it.
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  std::ifstream stat(path);
  if (!stat) return true;  // no /proc: trust kill()
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  if (close != std::string::npos && close + 2 < line.size()) {
    char state = line[close + 2];
    if (state == 'Z' || state == 'X') return false;
  }
  return true;
}

// Yama's ptrace_scope 1 lets a process read only its descendants' memory:
// the ranks of a node are siblings, so each lets any process of its user
// read it (the check of the user, which is the same for every rank, stays).
void allowReadsBySiblings(int rank) {
  std::ifstream scope("/proc/sys/kernel/yama/ptrace_scope");
  int value = 0;
  if (!(scope >> value) || value != 1) return;
  if (prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0) != 0)
    WEFT_INFO(kLogShm, "rank %d: prctl(PR_SET_PTRACER) failed (%s): cross-memory attach may be refused", rank,
              strerror(errno));
}

// Reads bytes at address in pid's memory into dst; a short read is retried
// from where it stopped.
bool readProcess(pid_t pid, void* dst, uint64_t address, size_t bytes, int* error) {
  size_t done = 0;
  while (done < bytes) {
    struct iovec local = {static_cast<char*>(dst) + done, bytes - done};
    struct iovec remote = {reinterpret_cast<void*>(address + done), bytes - done};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) {
      *error = n == 0 ? EFAULT : errno;
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

// What a peer reads to map a registered buffer. state: 0 free, else the
// entry is valid (written last, with release).
struct RegistrationEntry {
  std::atomic<uint64_t> state;
  uint64_t base, bytes;   // the registered range, in the owner's address space
  uint64_t allocationId;  // SharedAllocation::id
  uint64_t allocationBase, allocationBytes;
  int32_t fd;  // the owner's memfd
  int32_t pad;

  bool live() const { return state.load(std::memory_order_acquire) != 0; }
  bool holds(uint64_t address, size_t length) const { return live() && rangeHolds(base, bytes, address, length); }
};

RegistrationEntry* ShmTransport::registrationsOf(int local) const {
  return registrations_ + static_cast<size_t>(local) * kMaxRegistrations;
}

size_t ShmTransport::fifoOffset(int fromLocal, int toLocal, int channel) const {
  size_t nLocal = localRanks_.size();
  size_t index = (static_cast<size_t>(channel) * nLocal + fromLocal) * nLocal + toLocal;
  return fifoBase_ + index * fifoBytes_;
}

Result<std::unique_ptr<ShmTransport>> ShmTransport::create(Bootstrap& bootstrap, const std::vector<int>& localRanks,
                                                           int rank, const ShmConfig& config) {
  std::unique_ptr<ShmTransport> shm(new ShmTransport());
  shm->config_ = config;
  shm->rank_ = rank;
  shm->pid_ = getpid();
  shm->localRanks_ = localRanks;
  shm->nranksTotal_ = bootstrap.nranks();
  shm->localIndex_.assign(static_cast<size_t>(bootstrap.nranks()), -1);
  for (size_t i = 0; i < localRanks.size(); ++i) shm->localIndex_[localRanks[i]] = static_cast<int>(i);
  int nLocal = static_cast<int>(localRanks.size());
  int myLocal = shm->localIndex_[rank];
  bool leader = myLocal == 0;

  size_t progressOffset = roundUp(sizeof(ShmControl) + sizeof(int32_t) * nLocal, 8);
  size_t stoppedOffset = progressOffset + sizeof(uint64_t) * nLocal;
  // Cross-memory attach: each rank's probe (the address of a word it
  // holds) and whether it could read every other process's probe.
  size_t probeOffset = roundUp(stoppedOffset + sizeof(uint32_t) * nLocal, 8);
  size_t readableOffset = probeOffset + sizeof(uint64_t) * nLocal;
  size_t probeFdOffset = readableOffset + sizeof(uint32_t) * nLocal;
  size_t registrationsOffset = roundUp(probeFdOffset + sizeof(int32_t) * nLocal, 64);
  size_t controlBytes = roundUp(registrationsOffset + sizeof(RegistrationEntry) * kMaxRegistrations * nLocal, kAlign);
  shm->fifoBytes_ = roundUp(sizeof(FifoCounters) + sizeof(PaddedHeader) * config.nSlots, kAlign) +
                    roundUp(config.slotBytes * config.nSlots, kAlign);
  shm->fifoBase_ = controlBytes;
  size_t total = controlBytes + shm->fifoBytes_ * static_cast<size_t>(nLocal) * nLocal * config.nChannels;

  // The leader names the segment and every local rank learns the name
  // before the segment exists; then the leader creates it, the others map
  // it, and the name goes away. Whoever survives a failure at any point
  // after the names are known removes the name, so a rank that dies during
  // init (the leader included) leaves nothing in /dev/shm. Names carry the
  // pid and random bits, so concurrent communicators never collide.
  std::vector<char> names(static_cast<size_t>(bootstrap.nranks()) * kNameBytes, 0);
  char* myName = names.data() + static_cast<size_t>(rank) * kNameBytes;
  if (leader) {
    uint64_t bits;
    WEFT_CHECK(randomBytes(&bits, sizeof(bits)));
    snprintf(myName, kNameBytes, "/weft-%d-%016llx", getpid(), static_cast<unsigned long long>(bits));
  }
  WEFT_CHECK(bootstrap.allGather(names.data(), kNameBytes));
  const std::string name = names.data() + static_cast<size_t>(localRanks[0]) * kNameBytes;
  if (name.empty() || name[0] != '/')
    return WEFT_ERROR(weftInternalError, "rank %d: rank %d sent no shared-memory name", rank, localRanks[0]);
  struct NameRemover {
    const std::string& name;
    ~NameRemover() { ShmSegment::unlinkName(name); }
  } remover{name};
  faultPoint("shm.named", rank);

  // 1: this rank holds the segment (the leader: created it; others: mapped it).
  std::vector<char> state(static_cast<size_t>(bootstrap.nranks()), 0);
  Status localStatus;
  if (leader) {
    // A rank alone on its node shares its FIFOs with nobody: private
    // memory, so that not even its death at the worst moment leaves a name.
    Result<ShmSegment> segment = nLocal == 1 ? ShmSegment::createPrivate(total) : ShmSegment::create(name, total);
    if (segment.isOk()) {
      shm->segment_ = segment.take();
      static_cast<ShmControl*>(shm->segment_.data())->magic = kControlMagic;
    } else {
      localStatus = Status(segment.status().code(),
                           format("rank %d: %s. It holds a FIFO per ordered pair of the %d local ranks (%d x %d) "
                                  "and channel (%d), each of WEFT_NSLOTS=%d slots of WEFT_BUFFSIZE=%zu bytes: "
                                  "lower those or the channel "
                                  "count (WEFT_NCHANNELS, maxChannels), or give /dev/shm more room (docker run "
                                  "--shm-size)",
                                  rank, segment.status().message().c_str(), nLocal, nLocal, nLocal, config.nChannels,
                                  config.nSlots, config.slotBytes));
    }
    state[rank] = localStatus.isOk() ? 1 : 0;
  }
  faultPoint("shm.created", rank);
  Status gatherStatus = bootstrap.allGather(state.data(), 1);
  WEFT_CHECK(localStatus);
  WEFT_CHECK(gatherStatus);
  if (!state[localRanks[0]])
    return WEFT_ERROR(weftSystemError,
                      "rank %d: rank %d could not create the node's %.1f MB of shared memory (its error says why)",
                      rank, localRanks[0], 1e-6 * static_cast<double>(total));
  if (!leader) {
    Result<ShmSegment> segment = ShmSegment::open(name, total);
    if (segment.isOk())
      shm->segment_ = segment.take();
    else
      localStatus = segment.status();
    state[rank] = localStatus.isOk() ? 1 : 0;
  }
  faultPoint("shm.mapped", rank);
  gatherStatus = bootstrap.allGather(state.data(), 1);
  if (leader) shm->segment_.unlink();
  // A peer that died here makes the leader unlink the segment early, and a
  // slower rank then fails to open it: the gather's error, which names the
  // dead rank, is the cause to report.
  WEFT_CHECK(gatherStatus);
  WEFT_CHECK(localStatus);
  for (int r : localRanks)
    if (!state[r])
      return WEFT_ERROR(weftSystemError, "rank %d: rank %d could not map the node's shared memory", rank, r);

  char* base = static_cast<char*>(shm->segment_.data());
  shm->control_ = reinterpret_cast<ShmControl*>(base);
  shm->progress_ = reinterpret_cast<std::atomic<uint64_t>*>(base + progressOffset);
  shm->stopped_ = reinterpret_cast<std::atomic<uint32_t>*>(base + stoppedOffset);
  auto* probes = reinterpret_cast<std::atomic<uint64_t>*>(base + probeOffset);
  auto* readable = reinterpret_cast<std::atomic<uint32_t>*>(base + readableOffset);
  auto* probeFds = reinterpret_cast<std::atomic<int32_t>*>(base + probeFdOffset);
  shm->registrations_ = reinterpret_cast<RegistrationEntry*>(base + registrationsOffset);
  static const uint64_t probeWord = kControlMagic;
  if (config.crossMemoryAttach) allowReadsBySiblings(rank);
  probes[myLocal].store(reinterpret_cast<uint64_t>(&probeWord), std::memory_order_relaxed);
  // Registered buffers: a page of shared memory that peers try to map.
  Result<void*> probePage = nLocal > 1 ? allocateSharedHost(sizeof(uint64_t)) : Result<void*>(nullptr);
  SharedAllocation probeAllocation;
  if (probePage.isOk() && probePage.value() != nullptr &&
      findSharedHost(probePage.value(), sizeof(uint64_t), &probeAllocation)) {
    *static_cast<uint64_t*>(probePage.value()) = kControlMagic;
    probeFds[myLocal].store(probeAllocation.fd, std::memory_order_relaxed);
  } else {
    probeFds[myLocal].store(-1, std::memory_order_relaxed);
  }
  struct ProbeFree {
    void* page;
    ~ProbeFree() {
      if (page != nullptr) freeSharedHost(page);
    }
  } probeFree{probePage.isOk() ? probePage.value() : nullptr};
  shm->control_->pids[myLocal].store(shm->pid_, std::memory_order_release);
  if (shm->control_->magic != kControlMagic)
    return WEFT_ERROR(weftInternalError, "rank %d: shared memory %s has no control block", rank, name.c_str());

  int nranks = bootstrap.nranks();
  shm->sends_.resize(static_cast<size_t>(config.nChannels) * nranks);
  shm->recvs_.resize(static_cast<size_t>(config.nChannels) * nranks);
  for (int channel = 0; channel < config.nChannels; ++channel) {
    for (int peer : localRanks) {
      if (peer == rank) continue;
      int peerLocal = shm->localIndex_[peer];
      FifoView out = viewAt(base + shm->fifoOffset(myLocal, peerLocal, channel), config.nSlots);
      FifoView in = viewAt(base + shm->fifoOffset(peerLocal, myLocal, channel), config.nSlots);
      shm->sends_[static_cast<size_t>(channel) * nranks + peer] =
          std::make_unique<ShmSend>(out, config.nSlots, config.slotBytes, peer);
      shm->recvs_[static_cast<size_t>(channel) * nranks + peer] =
          std::make_unique<ShmRecv>(in, config.nSlots, config.slotBytes, peer);
    }
  }
  // Pids must be visible before anyone checks liveness.
  WEFT_CHECK(bootstrap.barrier());
  // Cross-memory attach is used only where every rank of the node could
  // read every other process's probe: a sender then knows its receiver can.
  // Likewise, registered buffers are published to other processes only
  // where every rank could map every other's probe page.
  constexpr uint32_t kProbed = 4, kReads = 1, kMaps = 2;
  bool otherProcesses = false;
  uint32_t mine = kProbed | (config.crossMemoryAttach ? kReads : 0) | kMaps;
  for (int local = 0; local < nLocal; ++local) {
    pid_t pid = shm->control_->pids[local].load(std::memory_order_acquire);
    if (local == myLocal || pid == shm->pid_) continue;
    otherProcesses = true;
    int peerRank = localRanks[static_cast<size_t>(local)];
    uint64_t word = 0;
    int error = 0;
    if ((mine & kReads) != 0 &&
        (!readProcess(pid, &word, probes[local].load(std::memory_order_relaxed), sizeof(word), &error) ||
         word != kControlMagic)) {
      WEFT_INFO(kLogShm, "rank %d: cross-memory attach to rank %d (pid %d) failed: %s; copies go through the FIFOs",
                rank, peerRank, pid, error != 0 ? strerror(error) : "wrong value");
      mine &= ~kReads;
    }
    int fd = probeFds[local].load(std::memory_order_relaxed);
    char* page = (mine & kMaps) != 0 && fd >= 0 ? mapPeerSharedHost(pid, fd, sizeof(uint64_t), &error) : nullptr;
    if ((mine & kMaps) != 0 && (page == nullptr || *reinterpret_cast<uint64_t*>(page) != kControlMagic)) {
      WEFT_INFO(kLogShm,
                "rank %d: mapping rank %d's (pid %d) shared host memory failed: %s; its registered buffers are "
                "copied",
                rank, peerRank, pid, fd < 0 ? "it has none" : strerror(error));
      mine &= ~kMaps;
    }
    if (page != nullptr) munmap(page, sizeof(uint64_t));
  }
  readable[myLocal].store(mine, std::memory_order_release);
  WEFT_CHECK(bootstrap.barrier());
  shm->crossMemoryAttach_ = otherProcesses;
  shm->mapsShared_ = otherProcesses;
  // Every local rank a process of its own: the same answer on every rank.
  std::vector<pid_t> pids;
  pids.reserve(static_cast<size_t>(nLocal));
  for (int local = 0; local < nLocal; ++local)
    pids.push_back(std::abs(shm->control_->pids[local].load(std::memory_order_acquire)));
  std::sort(pids.begin(), pids.end());
  shm->distinctProcesses_ = std::adjacent_find(pids.begin(), pids.end()) == pids.end();
  for (int local = 0; local < nLocal; ++local) {
    uint32_t theirs = readable[local].load(std::memory_order_acquire);
    if ((theirs & kReads) == 0) shm->crossMemoryAttach_ = false;
    if ((theirs & kMaps) == 0) shm->mapsShared_ = false;
  }
  WEFT_INFO(kLogShm,
            "rank %d: shm transport with %d local ranks, %d channel(s), %d x %zu-byte slots, %zu MiB mapped, "
            "cross-memory attach %s, registered buffers %s",
            rank, nLocal, config.nChannels, config.nSlots, config.slotBytes, total >> 20,
            shm->crossMemoryAttach_     ? "on"
            : !config.crossMemoryAttach ? "off (WEFT_CMA=0)"
            : otherProcesses            ? "refused"
                                        : "unused (one process)",
            shm->mapsShared_ ? "mapped"
            : otherProcesses ? "copied (not mappable)"
                             : "unused (one process)");
  return shm;
}

bool ShmTransport::sameProcess(int peer) const {
  int local = localIndex_[peer];
  return local >= 0 && std::abs(control_->pids[local].load(std::memory_order_acquire)) == pid_;
}

bool ShmTransport::everyPeerCopiesByAddress() const { return crossMemoryAttach_ && distinctProcesses_; }

bool ShmTransport::copiesByAddress(int peer) const {
  int local = localIndex_[peer];
  return crossMemoryAttach_ && local >= 0 && !sameProcess(peer);
}

Status ShmTransport::copyFromPeer(int peer, void* dst, uint64_t address, size_t bytes) const {
  int local = localIndex_[peer];
  pid_t pid = local >= 0 ? std::abs(control_->pids[local].load(std::memory_order_acquire)) : 0;
  int error = 0;
  if (pid != 0 && readProcess(pid, dst, address, bytes, &error)) return Status::ok();
  // The peer died, or left its call (it failed, or learned of another rank's
  // failure) and let the buffer go, or exited. A failure reported on this
  // node is the cause to name, not the address the peer no longer holds.
  Status cause;
  if (peerFailed(&cause)) return cause;
  if (pid == 0 || error == ESRCH || !processAlive(pid))
    return WEFT_ERROR(weftRemoteError, "rank %d: rank %d (pid %d on this node) died while this rank read its buffer",
                      rank_, peer, pid);
  if (readsNoMore(peer))
    return WEFT_ERROR(weftRemoteError, "rank %d: rank %d left the call while this rank read its buffer", rank_, peer);
  return WEFT_ERROR(weftSystemError, "rank %d: reading %zu bytes at 0x%llx of rank %d (pid %d) failed: %s", rank_,
                    bytes, static_cast<unsigned long long>(address), peer, pid, strerror(error));
}

ShmTransport::~ShmTransport() {
  if (control_ != nullptr) markDeparted();
  for (auto& [key, mapping] : mappings_) munmap(mapping.base, mapping.bytes);
}

bool ShmTransport::mapsRegistered(int peer) const {
  int local = localIndex_[peer];
  return mapsShared_ && local >= 0 && !sameProcess(peer);
}

Result<const void*> ShmTransport::mappedAddress(int peer, uint64_t address, size_t bytes) const {
  int local = localIndex_[peer];
  if (!mapsShared_ || local < 0) return static_cast<const void*>(nullptr);
  const RegistrationEntry* table = registrationsOf(local);
  for (int i = 0; i < kMaxRegistrations; ++i) {
    const RegistrationEntry& entry = table[i];
    if (!entry.holds(address, bytes)) continue;
    std::lock_guard<std::mutex> lock(mappingsMutex_);
    auto key = std::make_pair(local, entry.allocationId);
    auto it = mappings_.find(key);
    if (it == mappings_.end()) {
      // Allocations of this peer's that it no longer registers are not read
      // again (it deregisters nothing an enqueued call uses): unmapped here,
      // so that memory it frees is not held by this process.
      auto stillRegistered = [table](uint64_t allocationId) {
        return std::any_of(table, table + kMaxRegistrations,
                           [&](const RegistrationEntry& e) { return e.live() && e.allocationId == allocationId; });
      };
      std::erase_if(mappings_, [&](const auto& mapping) {
        const auto& [owner, allocationId] = mapping.first;
        if (owner != local || stillRegistered(allocationId)) return false;
        munmap(mapping.second.base, mapping.second.bytes);
        return true;
      });
      pid_t pid = std::abs(control_->pids[local].load(std::memory_order_acquire));
      int error = 0;
      char* p = mapPeerSharedHost(pid, entry.fd, entry.allocationBytes, &error);
      if (p == nullptr)
        return WEFT_ERROR(weftSystemError, "rank %d: mapping rank %d's registered buffer (%zu bytes) failed: %s", rank_,
                          peer, static_cast<size_t>(entry.allocationBytes), strerror(error));
      it = mappings_.emplace(key, Mapping{p, entry.allocationBytes}).first;
    }
    return static_cast<const void*>(it->second.base + (address - entry.allocationBase));
  }
  return static_cast<const void*>(nullptr);
}

int ShmTransport::publishRegistration(const void* base, size_t bytes, const SharedAllocation& allocation) {
  RegistrationEntry* table = registrationsOf(localIndex_[rank_]);
  for (int i = 0; i < kMaxRegistrations; ++i) {
    RegistrationEntry& entry = table[i];
    if (entry.state.load(std::memory_order_relaxed) != 0) continue;
    entry.base = reinterpret_cast<uint64_t>(base);
    entry.bytes = bytes;
    entry.allocationId = allocation.id;
    entry.allocationBase = reinterpret_cast<uint64_t>(allocation.base);
    entry.allocationBytes = allocation.bytes;
    entry.fd = allocation.fd;
    entry.state.store(1, std::memory_order_release);
    return i;
  }
  return -1;
}

void ShmTransport::withdrawRegistration(int entry) {
  if (entry < 0 || entry >= kMaxRegistrations) return;
  registrationsOf(localIndex_[rank_])[entry].state.store(0, std::memory_order_release);
}

bool ShmTransport::registered(const void* p, size_t bytes) const {
  if (!mapsShared_ || p == nullptr) return false;
  const RegistrationEntry* table = registrationsOf(localIndex_[rank_]);
  return std::any_of(table, table + kMaxRegistrations,
                     [&](const RegistrationEntry& entry) { return entry.holds(reinterpret_cast<uint64_t>(p), bytes); });
}

SendConnector* ShmTransport::sendTo(int peer, int channel) const {
  return sends_[static_cast<size_t>(channel) * nranksTotal_ + peer].get();
}

RecvConnector* ShmTransport::recvFrom(int peer, int channel) const {
  return recvs_[static_cast<size_t>(channel) * nranksTotal_ + peer].get();
}

void ShmTransport::reportFatal(int rank, weftResult_t code, const std::string& message) {
  uint32_t expected = 0;
  // Claim the slot, write the message, then publish it.
  if (control_->abortFlag.compare_exchange_strong(expected, 1)) {
    control_->abortRank = rank;
    control_->abortCode = code;
    snprintf(control_->abortMessage, sizeof(control_->abortMessage), "%s", message.c_str());
    control_->abortFlag.store(2, std::memory_order_release);
  }
}

bool ShmTransport::peerFailed(Status* status) const {
  if (control_->abortFlag.load(std::memory_order_acquire) != 2) return false;
  if (control_->abortRank == rank_) return false;
  *status =
      WEFT_ERROR(weftRemoteError, "rank %d: rank %d failed: %s", rank_, control_->abortRank, control_->abortMessage);
  return true;
}

Status ShmTransport::checkPeerAlive(int peer) const {
  int local = localIndex_[peer];
  if (local < 0) return Status::ok();
  pid_t pid = control_->pids[local].load(std::memory_order_acquire);
  if (pid < 0)
    return WEFT_ERROR(weftRemoteError,
                      "rank %d: rank %d destroyed its communicator while this rank still waits for it "
                      "(did the ranks make different calls?)",
                      rank_, peer);
  if (pid == 0 || pid == pid_) return Status::ok();
  if (!processAlive(pid))
    return WEFT_ERROR(weftRemoteError,
                      "rank %d: rank %d (pid %d on this node) died; every rank of this communicator must "
                      "abort it",
                      rank_, peer, pid);
  return Status::ok();
}

std::atomic<uint64_t>* ShmTransport::progressOf(int rank) const {
  int local = rank >= 0 && rank < static_cast<int>(localIndex_.size()) ? localIndex_[rank] : -1;
  return local < 0 ? nullptr : &progress_[local];
}

void ShmTransport::markStopped() { stopped_[localIndex_[rank_]].store(1, std::memory_order_release); }

bool ShmTransport::readsNoMore(int peer) const {
  int local = localIndex_[peer];
  if (local < 0) return true;
  return stopped_[local].load(std::memory_order_acquire) != 0 ||
         control_->pids[local].load(std::memory_order_acquire) < 0;
}

void ShmTransport::markDeparted() {
  int local = localIndex_[rank_];
  control_->pids[local].store(-static_cast<int32_t>(getpid()), std::memory_order_release);
}

}  // namespace weft
