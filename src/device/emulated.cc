// The emulated device: device memory from an allocator that knows its
// allocations (so a host pointer given to a GPU communicator is refused as it
// would be on a GPU), streams as host threads running their launches in
// order, and a launch's blocks as host threads running the same interpreter
// the GPU runs (interpreter.h).
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/env.h"
#include "core/logging.h"
#include "core/shared_host_memory.h"
#include "device/interpreter.h"
#include "device/runtime.h"

namespace weft::device {
namespace {

class EmulatedStream {
 public:
  EmulatedStream() : thread_([this] { loop(); }) {}
  ~EmulatedStream() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  // The task's ticket: done(ticket) once it and everything before it ran.
  uint64_t enqueue(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(task));
    wake_.notify_all();
    return ++enqueued_;
  }
  uint64_t enqueued() {
    std::lock_guard<std::mutex> lock(mutex_);
    return enqueued_;
  }
  bool done(uint64_t ticket) {
    std::lock_guard<std::mutex> lock(mutex_);
    return completed_ >= ticket;
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      ++completed_;
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  uint64_t enqueued_ = 0, completed_ = 0;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is there
};

class EmulatedRuntime final : public Runtime {
 public:
  explicit EmulatedRuntime(int ordinal) : ordinal_(ordinal) {}

  const char* name() const override { return "emulated"; }
  int device() const override { return ordinal_; }

  Result<void*> allocate(size_t bytes) override {
    size_t rounded = (std::max<size_t>(bytes, 1) + 255) & ~size_t{255};
    void* p = std::aligned_alloc(256, rounded);
    if (p == nullptr)
      return WEFT_ERROR(weftSystemError, "emulated device %d: cannot allocate %zu bytes", ordinal_, bytes);
    memset(p, 0, rounded);
    std::lock_guard<std::mutex> lock(mutex_);
    allocations_[reinterpret_cast<uintptr_t>(p)] = bytes;
    return p;
  }
  void free(void* p) override {
    if (p == nullptr) return;
    SharedAllocation shared;
    bool isShared = findSharedHost(p, 1, &shared) && shared.base == p;
    std::lock_guard<std::mutex> lock(mutex_);
    allocations_.erase(reinterpret_cast<uintptr_t>(p));
    if (!isShared) {
      std::free(p);
      return;
    }
    // weftMemAlloc's memfds stay mapped a while after they are freed (no
    // longer device memory for checkBuffer), as freed heap memory does: an
    // immediate munmap made a 4-rank device suite crash now and then under
    // load (a late access whose cause is not found yet).
    quarantine_.push_back({p, shared.bytes});
    quarantined_ += shared.bytes;
    while (quarantined_ > (size_t{256} << 20) && quarantine_.size() > 1) {
      quarantined_ -= quarantine_.front().second;
      freeSharedHost(quarantine_.front().first);
      quarantine_.pop_front();
    }
  }
  // A memfd mapped shared (core/shared_host_memory.h), which a rank of
  // another process maps when the buffer is registered.
  Result<void*> allocateUser(size_t bytes) override {
    Result<void*> p = allocateSharedHost(std::max<size_t>(bytes, 1));  // zeroed, page-aligned
    if (!p.isOk()) return p.status();
    std::lock_guard<std::mutex> lock(mutex_);
    allocations_[reinterpret_cast<uintptr_t>(p.value())] = bytes;
    return p;
  }
  Result<void*> allocateShared(size_t bytes) override {
    void* p = std::calloc(1, std::max<size_t>(bytes, 1));
    if (p == nullptr) return WEFT_ERROR(weftSystemError, "cannot allocate %zu bytes", bytes);
    return p;
  }
  void freeShared(void* p) override { std::free(p); }
  Status toDevice(void* dst, const void* src, size_t bytes) override {
    memcpy(dst, src, bytes);
    return Status::ok();
  }
  Status toHost(void* dst, const void* src, size_t bytes) override {
    memcpy(dst, src, bytes);
    return Status::ok();
  }

  Status checkBuffer(const void* p, size_t bytes) const override {
    uintptr_t at = reinterpret_cast<uintptr_t>(p);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = allocations_.upper_bound(at);
    if (it != allocations_.begin()) {
      --it;
      if (at >= it->first && at - it->first + bytes <= it->second) return Status::ok();
      if (at < it->first + it->second)
        return WEFT_ERROR(weftInvalidArgument,
                          "%p + %zu bytes runs past the end of its emulated device allocation (%zu bytes at %p)", p,
                          bytes, it->second, reinterpret_cast<void*>(it->first));
    }
    return WEFT_ERROR(weftInvalidArgument,
                      "%p is not memory of emulated device %d (a host pointer? allocate with weftMemAlloc)", p,
                      ordinal_);
  }
  Status checkStream(void* stream) const override {
    if (stream == nullptr) return Status::ok();
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& s : streams_)
      if (s.get() == stream) return Status::ok();
    return WEFT_ERROR(weftInvalidArgument,
                      "stream %p is not a stream of emulated device %d (pass NULL: the communicator's own)", stream,
                      ordinal_);
  }

  Result<void*> createStream() override {
    std::lock_guard<std::mutex> lock(mutex_);
    streams_.push_back(std::make_unique<EmulatedStream>());
    return static_cast<void*>(streams_.back().get());
  }
  void destroyStream(void* stream) override {
    std::unique_ptr<EmulatedStream> gone;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& s : streams_)
        if (s.get() == stream) {
          gone = std::move(s);
          s = std::move(streams_.back());
          streams_.pop_back();
          break;
        }
    }
  }
  Status orderAfterNullStream(void*) override { return Status::ok(); }  // NULL is the communicator's stream

  Status launch(const Work* work, int blocks, void* stream) override {
    auto* s = static_cast<EmulatedStream*>(stream);
    s->enqueue([work, blocks] {
      std::vector<std::thread> threads;
      threads.reserve(static_cast<size_t>(blocks));
      for (int b = 0; b < blocks; ++b)
        threads.emplace_back([work, b] {
          currentBlock.index = b;
          runBlock(*work, b);
        });
      for (std::thread& t : threads) t.join();
    });
    return Status::ok();
  }
  Result<Event> record(void* stream) override {
    auto* s = static_cast<EmulatedStream*>(stream);
    return Event{s, s->enqueued()};
  }
  bool capturing(void*) const override { return false; }
  Status streamWait(void* stream, const Event& event) override {
    if (stream == event.handle) return Status::ok();
    auto* s = static_cast<EmulatedStream*>(event.handle);
    uint64_t ticket = event.ticket;
    static_cast<EmulatedStream*>(stream)->enqueue([s, ticket] {
      while (!s->done(ticket)) std::this_thread::yield();
    });
    return Status::ok();
  }
  Result<bool> done(const Event& event) override {
    return static_cast<EmulatedStream*>(event.handle)->done(event.ticket);
  }
  void releaseEvent(const Event&) override {}

  Result<MemoryHandle> exportMemory(void* p) override { return MemoryHandle::ofPointer(p, 1); }
  Result<MemoryHandle> exportRange(const void* p, size_t bytes) override {
    SharedAllocation allocation;
    if (!findSharedHost(p, bytes, &allocation))
      return WEFT_ERROR(
          weftInvalidArgument,
          "%p (%zu bytes) is not weftMemAlloc memory of emulated device %d: other processes cannot map it", p, bytes,
          ordinal_);
    MemoryHandle handle = MemoryHandle::ofPointer(allocation.base, 3);
    handle.fd = allocation.fd;
    handle.bytes = allocation.bytes;
    return handle;
  }
  Result<void*> importMemory(const MemoryHandle& handle) override {
    if (handle.kind != 1 || handle.pid != getpid())
      return WEFT_ERROR(weftInvalidUsage,
                        "the emulated device shares memory only between ranks of one process (a peer in process %d "
                        "offered memory to process %d)",
                        handle.pid, getpid());
    return reinterpret_cast<void*>(handle.address);
  }
  void closeImported(void*) override {}
  // Emulated device memory is the process's own heap: a rank of another
  // process stages through host memory instead.
  bool reachesPeer(const std::string&, int peerPid) const override { return peerPid == getpid(); }

 protected:
  Status registerHost(void*, size_t) override { return Status::ok(); }
  void unregisterHost(void*) override {}

 private:
  int ordinal_;
  mutable std::mutex mutex_;
  std::map<uintptr_t, size_t> allocations_;
  std::deque<std::pair<void*, size_t>> quarantine_;  // freed memfds still mapped (free)
  size_t quarantined_ = 0;
  std::vector<std::unique_ptr<EmulatedStream>> streams_;
};

}  // namespace

MemoryHandle MemoryHandle::ofPointer(void* p, uint32_t kind) {
  MemoryHandle handle;
  handle.pid = getpid();
  handle.kind = kind;
  handle.address = reinterpret_cast<uint64_t>(p);
  return handle;
}

bool emulatedDeviceSelected() { return envString(EnvParam::Device) == "emulated"; }

std::shared_ptr<Runtime> emulatedRuntime(int ordinal) {
  static std::mutex mutex;
  static std::map<int, std::shared_ptr<Runtime>> runtimes;
  std::lock_guard<std::mutex> lock(mutex);
  std::shared_ptr<Runtime>& runtime = runtimes[ordinal];
  if (!runtime) runtime = std::make_shared<EmulatedRuntime>(ordinal);
  return runtime;
}

Result<std::shared_ptr<Runtime>> runtimeFor(int ordinal) {
  std::string chosen = envString(EnvParam::Device);
  if (chosen == "emulated") return emulatedRuntime(ordinal);
  if (!chosen.empty() && chosen != "cuda")
    return WEFT_ERROR(weftInvalidArgument, "WEFT_DEVICE=%s: expected empty, \"cuda\" or \"emulated\"", chosen.c_str());
  return cudaRuntime(ordinal);
}

}  // namespace weft::device
