// weft as a torch.distributed backend: a c10d::Backend whose operations are
// weft calls on one communicator per process group.
//
// A call checks its tensors, copies non-contiguous ones into contiguous
// buffers, posts the weft operation and returns a Work holding weft's
// sequence number for it. The Work completes when that operation does:
// - at once, when the operation already finished inside the call (weft runs
//   small operations on the calling thread);
// - in wait(), which waits for the sequence number on the caller's thread;
// - else on the backend's one watcher thread, which waits for pending
//   operations in order and completes their Works and futures.
// Completing copies results back into non-contiguous or list outputs, then
// marks the future with the output tensors. weft's errors (a dead peer, a
// timeout, mismatched calls) become DistBackendError with weft's message.
#include <torch/extension.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "weft/weft.h"

namespace weft_torch {
namespace {

using c10d::OpType;

[[noreturn]] void throwBackend(const std::string& what) { C10_THROW_ERROR(DistBackendError, what); }

std::exception_ptr backendError(const std::string& what) {
  return std::make_exception_ptr(
      c10::DistBackendError(c10::SourceLocation{__func__, __FILE__, static_cast<uint32_t>(__LINE__)}, what));
}

std::string lastError() {
  const char* text = weftGetLastError(nullptr);
  return text != nullptr ? text : "";
}

// The weft type of a tensor for reductions, where weft has it.
std::optional<weftDataType_t> weftType(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return weftFloat32;
    case at::kDouble: return weftFloat64;
    case at::kHalf: return weftFloat16;
    case at::kBFloat16: return weftBfloat16;
    case at::kChar: return weftInt8;
    case at::kByte: return weftUint8;
    case at::kInt: return weftInt32;
    case at::kLong: return weftInt64;
    case at::kUInt32: return weftUint32;
    case at::kUInt64: return weftUint64;
    case at::kFloat8_e4m3fn: return weftFloat8e4m3;
    case at::kFloat8_e5m2: return weftFloat8e5m2;
    default: return std::nullopt;
  }
}

// What a contiguous buffer is in weft's terms.
struct Elements {
  weftDataType_t type;
  size_t count;  // elements of type
};

// For operations that only move data: the weft type where there is one (so
// that weft's cross-rank checks compare types), else bytes.
Elements moving(const at::Tensor& t) {
  if (auto type = weftType(t.scalar_type())) return {*type, static_cast<size_t>(t.numel())};
  return {weftUint8, static_cast<size_t>(t.numel()) * t.element_size()};
}

// The Work of one weft operation (or of a group of them).
class Engine;

class WeftWork : public c10d::Work {
 public:
  WeftWork(std::shared_ptr<Engine> engine, int rank, OpType type, const char* name, std::vector<at::Tensor> outputs,
           std::chrono::milliseconds timeout)
      : c10d::Work(rank, type),
        engine_(std::move(engine)),
        name_(name),
        outputs_(std::move(outputs)),
        timeout_(timeout),
        future_(c10::make_intrusive<c10::ivalue::Future>(c10::ListType::create(c10::TensorType::get()))) {}

  bool isCompleted() override;
  bool isSuccess() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return completed_ && !exception_;
  }
  std::exception_ptr exception() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return exception_;
  }
  int sourceRank() const override { return sourceRank_; }
  std::vector<at::Tensor> result() override { return outputs_; }
  void synchronize() override {}
  bool wait(std::chrono::milliseconds timeout) override;
  void abort() override;
  c10::intrusive_ptr<c10::ivalue::Future> getFuture() override { return future_; }
  uint64_t getSequencenumber() const override { return seq_; }
  std::chrono::milliseconds getTimeout() const override { return timeout_; }

  // Completes the Work once (later calls do nothing): copy-out, then the
  // waiters and the future.
  void complete(weftResult_t rc, const std::string& error);
  bool claimed() const { return claimed_.load(std::memory_order_acquire); }

  std::shared_ptr<Engine> engine_;
  const char* name_;
  uint64_t seq_ = 0;
  bool inGroup_ = false;  // posted inside startCoalescing/endCoalescing
  int sourceRank_ = -1;
  std::vector<at::Tensor> outputs_;
  std::vector<at::Tensor> keep_;   // buffers weft reads or writes until completion
  std::function<void()> copyOut_;  // results into the caller's tensors
  std::chrono::milliseconds timeout_;
  c10::intrusive_ptr<c10::ivalue::Future> future_;
  std::atomic<bool> claimed_{false};
};

// One weft communicator, its posting lock, and the watcher thread.
class Engine : public std::enable_shared_from_this<Engine> {
 public:
  Engine(weftComm_t comm, int rank, std::chrono::milliseconds timeout) : comm_(comm), rank_(rank), timeout_(timeout) {}
  ~Engine() { stop(false); }

  void start() {
    watcher_ = std::thread([this] { watch(); });
  }

  // Posts under the lock; on a refused call throws with weft's message and
  // posts nothing (the communicator stays usable).
  void post(const c10::intrusive_ptr<WeftWork>& work, const std::function<weftResult_t(weftComm_t)>& call) {
    {
      std::lock_guard<std::mutex> lock(postMutex_);
      if (dead_.load()) throwBackend(std::string("weft: ") + work->name_ + ": " + deadWhy());
      weftResult_t rc = call(comm_);
      if (rc != weftSuccess) throwBackend(std::string("weft: ") + work->name_ + " refused: " + lastError());
      unsigned long long seq = 0;
      weftCommGetSeq(comm_, &seq);
      work->seq_ = seq;
      if (coalescing_) {
        work->inGroup_ = true;
        coalesced_.push_back(work);
        return;
      }
    }
    // Outside the lock: completing runs the future's callbacks, which may post.
    track(work);
  }

  void startCoalescing() {
    std::lock_guard<std::mutex> lock(postMutex_);
    TORCH_CHECK(!coalescing_, "weft: startCoalescing while a coalescing block is already open");
    weftGroupStart();
    coalescing_ = true;
  }

  // Closes the weft group; every Work posted inside completes with it.
  c10::intrusive_ptr<WeftWork> endCoalescing(const c10::intrusive_ptr<WeftWork>& groupWork) {
    std::vector<c10::intrusive_ptr<WeftWork>> works;
    {
      std::lock_guard<std::mutex> lock(postMutex_);
      TORCH_CHECK(coalescing_, "weft: endCoalescing without startCoalescing");
      coalescing_ = false;
      works.swap(coalesced_);
      weftResult_t rc = weftGroupEnd();
      if (rc != weftSuccess) {
        std::string error = lastError();
        for (auto& work : works) work->complete(rc, error);
        throwBackend("weft: the coalesced operations were refused: " + error);
      }
      unsigned long long seq = 0;
      weftCommGetSeq(comm_, &seq);
      groupWork->seq_ = seq;
      for (auto& work : works) {
        work->inGroup_ = false;
        groupWork->outputs_.insert(groupWork->outputs_.end(), work->outputs_.begin(), work->outputs_.end());
      }
    }
    for (auto& work : works) track(work);
    track(groupWork);
    return groupWork;
  }

  // Waits for seq on this thread; the result and weft's message.
  std::pair<weftResult_t, std::string> waitSeq(uint64_t seq) {
    if (dead_.load()) return {weftInvalidUsage, deadWhy()};
    weftResult_t rc = weftCommWaitSeq(comm_, seq);
    if (rc == weftSuccess) return {rc, ""};
    return {rc, dead_.load() ? deadWhy() : lastError()};
  }

  // done and the error, without waiting.
  bool test(uint64_t seq, weftResult_t* rc, std::string* error) {
    if (dead_.load()) {
      *rc = weftInvalidUsage;
      *error = deadWhy();
      return true;
    }
    int done = 0;
    *rc = weftCommTestSeq(comm_, seq, &done);
    if (*rc != weftSuccess) {
      *error = lastError();
      return true;
    }
    return done != 0;
  }

  // shutdown (abort false): finishes pending work, then destroys the
  // communicator. abort: stops it at once; pending Works fail.
  void stop(bool abort) {
    std::call_once(stopped_, [&] {
      if (abort) {
        {
          std::lock_guard<std::mutex> lock(whyMutex_);
          why_ = "rank " + std::to_string(rank_) + ": the process group was aborted";
        }
        dead_ = true;
        weftCommAbort(comm_);
      }
      {
        std::lock_guard<std::mutex> lock(queueMutex_);
        stopping_ = true;
      }
      queueChanged_.notify_all();
      if (watcher_.joinable()) watcher_.join();
      if (!abort) {
        {
          std::lock_guard<std::mutex> lock(whyMutex_);
          why_ = "rank " + std::to_string(rank_) + ": the process group was shut down";
        }
        dead_ = true;
        weftCommDestroy(comm_);
      }
    });
  }

  bool coalescing() const { return coalescing_; }
  weftComm_t comm() const { return comm_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  std::string deadWhy() {
    std::lock_guard<std::mutex> lock(whyMutex_);
    return why_;
  }

  // A posted Work: completed now when weft already finished it, else handed
  // to the watcher.
  void track(const c10::intrusive_ptr<WeftWork>& work) {
    weftResult_t rc = weftSuccess;
    std::string error;
    if (test(work->seq_, &rc, &error)) {
      work->complete(rc, error);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(queueMutex_);
      queue_.push_back(work);
    }
    queueChanged_.notify_one();
  }

  void watch() {
    for (;;) {
      c10::intrusive_ptr<WeftWork> work;
      {
        std::unique_lock<std::mutex> lock(queueMutex_);
        queueChanged_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        work = queue_.front();
        queue_.pop_front();
      }
      if (!work->claimed()) {
        auto [rc, error] = waitSeq(work->seq_);
        work->complete(rc, error);
      }
    }
  }

  weftComm_t comm_;
  int rank_;
  std::chrono::milliseconds timeout_;
  std::mutex postMutex_;
  bool coalescing_ = false;
  std::vector<c10::intrusive_ptr<WeftWork>> coalesced_;
  std::mutex queueMutex_;
  std::condition_variable queueChanged_;
  std::deque<c10::intrusive_ptr<WeftWork>> queue_;
  bool stopping_ = false;
  std::thread watcher_;
  std::once_flag stopped_;
  std::atomic<bool> dead_{false};
  std::mutex whyMutex_;
  std::string why_;
};

void WeftWork::complete(weftResult_t rc, const std::string& error) {
  if (claimed_.exchange(true)) return;
  std::exception_ptr failure;
  if (rc == weftSuccess) {
    try {
      if (copyOut_) copyOut_();
    } catch (...) {
      failure = std::current_exception();
    }
  } else {
    failure = backendError(std::string("weft: ") + name_ + " failed: " + error);
  }
  copyOut_ = nullptr;
  keep_.clear();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    completed_ = true;
    exception_ = failure;
  }
  cv_.notify_all();
  if (failure)
    future_->setError(failure);
  else
    future_->markCompleted(c10::IValue(outputs_));
}

bool WeftWork::isCompleted() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (completed_) return true;
  }
  if (inGroup_ || claimed()) return false;
  weftResult_t rc = weftSuccess;
  std::string error;
  if (engine_->test(seq_, &rc, &error)) complete(rc, error);
  std::lock_guard<std::mutex> lock(mutex_);
  return completed_;
}

bool WeftWork::wait(std::chrono::milliseconds timeout) {
  TORCH_CHECK(!inGroup_, "weft: ", name_, ": wait() inside a coalescing block; its operations run at endCoalescing");
  if (timeout == kNoTimeout && timeout_ == engine_->timeout()) {
    // weft's own timeout (the group's) bounds this wait.
    if (!claimed()) {
      auto [rc, error] = engine_->waitSeq(seq_);
      complete(rc, error);
    }
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return completed_; });
  } else {
    std::chrono::milliseconds limit = timeout == kNoTimeout ? timeout_ : timeout;
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (isCompleted()) break;
      std::unique_lock<std::mutex> lock(mutex_);
      if (cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(1)),
                         [&] { return completed_; }))
        break;
      if (std::chrono::steady_clock::now() >= deadline)
        throwBackend(std::string("weft: ") + name_ + " (operation " + std::to_string(seq_) + " of rank " +
                     std::to_string(rank_) + ") did not complete within " + std::to_string(limit.count()) + " ms");
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (exception_) std::rethrow_exception(exception_);
  return true;
}

void WeftWork::abort() { engine_->stop(true); }

// ---------------------------------------------------------------------------

class WeftBackend : public c10d::Backend {
 public:
  WeftBackend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, std::chrono::milliseconds timeout,
              std::string groupName, std::vector<uint64_t> globalRanks)
      : c10d::Backend(rank, size),
        options_(c10::make_intrusive<c10d::Backend::Options>("weft", timeout)),
        timeout_(timeout) {
    options_->group_name = std::move(groupName);
    options_->global_ranks_in_group = std::move(globalRanks);
    // Bootstrap: rank 0 publishes a weft unique id under this group's store
    // prefix; the others read it. The store is not used after this.
    weftUniqueId id;
    const std::string key = "weft_unique_id";
    if (rank == 0) {
      if (weftGetUniqueId(&id) != weftSuccess) throwBackend("weft: weftGetUniqueId failed: " + lastError());
      std::vector<uint8_t> bytes(sizeof(id.internal));
      std::memcpy(bytes.data(), id.internal, bytes.size());
      store->set(key, bytes);
    } else {
      std::vector<uint8_t> bytes = store->get(key);
      TORCH_CHECK(bytes.size() == sizeof(id.internal), "weft: the unique id in the store has ", bytes.size(),
                  " bytes, expected ", sizeof(id.internal));
      std::memcpy(id.internal, bytes.data(), bytes.size());
    }
    weftConfig_t config = WEFT_CONFIG_INITIALIZER;
    int64_t ms = timeout.count();
    config.timeoutMs = static_cast<int>(std::clamp<int64_t>(ms, 1, 2000000000));
    weftComm_t comm = nullptr;
    if (weftCommInitRankConfig(&comm, size, id, rank, &config) != weftSuccess)
      throwBackend("weft: rank " + std::to_string(rank) + " of " + std::to_string(size) +
                   ": communicator init failed: " + lastError());
    engine_ = std::make_shared<Engine>(comm, rank, timeout);
    engine_->start();
  }

  ~WeftBackend() override { engine_->stop(false); }

  const std::string getBackendName() const override { return "weft"; }
  c10::intrusive_ptr<Options> getBackendOptions() override { return options_; }
  bool supportsCoalescing() const override { return true; }
  bool supportsSplitting() const override { return true; }
  void setTimeout(std::chrono::milliseconds timeout) override {
    timeout_ = timeout;
    options_->timeout = timeout;
  }
  void abort() override { engine_->stop(true); }
  void shutdown() override { engine_->stop(false); }

  c10::intrusive_ptr<c10d::Backend> split(const c10::intrusive_ptr<c10d::Store>& store, const std::vector<int>& ranks,
                                          const c10::intrusive_ptr<Options>& opts) override {
    auto mine = std::find(ranks.begin(), ranks.end(), getRank());
    if (mine == ranks.end()) return nullptr;
    std::vector<uint64_t> global = opts->global_ranks_in_group;
    return c10::make_intrusive<WeftBackend>(store, static_cast<int>(mine - ranks.begin()),
                                            static_cast<int>(ranks.size()), opts->timeout, opts->group_name,
                                            std::move(global));
  }

  void startCoalescing() override { engine_->startCoalescing(); }
  c10::intrusive_ptr<c10d::Work> endCoalescing() override {
    return engine_->endCoalescing(newWork(OpType::COALESCED, "coalesced operations", {}));
  }

  // --- collectives ---------------------------------------------------------

  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                           const c10d::AllreduceOptions& opts) override {
    const at::Tensor& t = single(tensors, "allreduce");
    Reducing r = reducing(t, opts.reduceOp, "allreduce");
    auto work = newWork(OpType::ALLREDUCE, "allreduce", {t});
    Inout io = inPlace(t, work);
    post(work, [&](weftComm_t comm) {
      return withOp(comm, r, [&](weftRedOp_t op) {
        return weftAllReduce(io.data, io.data, r.elements.count, r.elements.type, op, comm, nullptr);
      });
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> allreduce_coalesced(std::vector<at::Tensor>& tensors,
                                                     const c10d::AllreduceCoalescedOptions& opts) override {
    TORCH_CHECK(!tensors.empty(), "weft: allreduce_coalesced: no tensors");
    std::vector<Reducing> rs;
    for (const at::Tensor& t : tensors) {
      checkCpu(t, "allreduce_coalesced");
      rs.push_back(reducing(t, opts.reduceOp, "allreduce_coalesced"));
    }
    auto work = newWork(OpType::ALLREDUCE_COALESCED, "allreduce_coalesced", tensors);
    std::vector<Inout> ios;
    for (const at::Tensor& t : tensors) ios.push_back(inPlace(t, work));
    post(work, [&](weftComm_t comm) {
      weftGroupStart();
      for (size_t i = 0; i < tensors.size(); ++i)
        withOp(comm, rs[i], [&](weftRedOp_t op) {
          return weftAllReduce(ios[i].data, ios[i].data, rs[i].elements.count, rs[i].elements.type, op, comm, nullptr);
        });
      return weftGroupEnd();
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                           const c10d::BroadcastOptions& opts) override {
    const at::Tensor& t = single(tensors, "broadcast");
    int root = checkRoot(opts.rootRank, "broadcast");
    auto work = newWork(OpType::BROADCAST, "broadcast", {t});
    Inout io = inPlace(t, work);
    Elements e = moving(t);
    post(work, [&](weftComm_t comm) { return weftBroadcast(io.data, io.data, e.count, e.type, root, comm, nullptr); });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> reduce(std::vector<at::Tensor>& tensors, const c10d::ReduceOptions& opts) override {
    const at::Tensor& t = single(tensors, "reduce");
    int root = checkRoot(opts.rootRank, "reduce");
    Reducing r = reducing(t, opts.reduceOp, "reduce");
    auto work = newWork(OpType::REDUCE, "reduce", {t});
    Inout io = inPlace(t, work);
    post(work, [&](weftComm_t comm) {
      return withOp(comm, r, [&](weftRedOp_t op) {
        return weftReduce(io.data, io.data, r.elements.count, r.elements.type, op, root, comm, nullptr);
      });
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                           std::vector<at::Tensor>& inputs,
                                           const c10d::AllgatherOptions& /*opts*/) override {
    const at::Tensor& in = single(inputs, "allgather");
    TORCH_CHECK(outputs.size() == 1, "weft: allgather: expected one output list, got ", outputs.size());
    checkList(outputs[0], in, "allgather", "output");
    auto work = newWork(OpType::ALLGATHER, "allgather", outputs[0]);
    at::Tensor src = input(in, work);
    at::Tensor flat = flatOutput(work, outputs[0], in);
    Elements e = moving(in);
    post(work, [&](weftComm_t comm) {
      return weftAllGather(src.data_ptr(), flat.data_ptr(), e.count, e.type, comm, nullptr);
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> _allgather_base(at::Tensor& output, at::Tensor& in,
                                                 const c10d::AllgatherOptions& /*opts*/) override {
    checkPair(output, in, getSize(), "all_gather_into_tensor", "output", "input");
    auto work = newWork(OpType::_ALLGATHER_BASE, "all_gather_into_tensor", {output});
    at::Tensor src = input(in, work);
    Inout out = outputOf(output, work);
    Elements e = moving(in);
    post(work,
         [&](weftComm_t comm) { return weftAllGather(src.data_ptr(), out.data, e.count, e.type, comm, nullptr); });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> allgather_into_tensor_coalesced(std::vector<at::Tensor>& outputs,
                                                                 std::vector<at::Tensor>& inputs,
                                                                 const c10d::AllgatherOptions& /*opts*/) override {
    TORCH_CHECK(outputs.size() == inputs.size(), "weft: allgather_into_tensor_coalesced: ", outputs.size(),
                " outputs for ", inputs.size(), " inputs");
    for (size_t i = 0; i < inputs.size(); ++i)
      checkPair(outputs[i], inputs[i], getSize(), "allgather_into_tensor_coalesced", "output", "input");
    auto work = newWork(OpType::ALLGATHER_INTO_TENSOR_COALESCED, "allgather_into_tensor_coalesced", outputs);
    auto [srcs, outs] = buffersOf(inputs, outputs, work);
    post(work, [&](weftComm_t comm) {
      weftGroupStart();
      for (size_t i = 0; i < inputs.size(); ++i) {
        Elements e = moving(inputs[i]);
        weftAllGather(srcs[i].data_ptr(), outs[i].data, e.count, e.type, comm, nullptr);
      }
      return weftGroupEnd();
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> reduce_scatter(std::vector<at::Tensor>& outputs,
                                                std::vector<std::vector<at::Tensor>>& inputs,
                                                const c10d::ReduceScatterOptions& opts) override {
    const at::Tensor& out = single(outputs, "reduce_scatter");
    TORCH_CHECK(inputs.size() == 1, "weft: reduce_scatter: expected one input list, got ", inputs.size());
    checkList(inputs[0], out, "reduce_scatter", "input");
    Reducing r = reducing(out, opts.reduceOp, "reduce_scatter");
    auto work = newWork(OpType::REDUCE_SCATTER, "reduce_scatter", {out});
    at::Tensor flat = concatenated(work, inputs[0]);
    Inout o = outputOf(out, work);
    post(work, [&](weftComm_t comm) {
      return withOp(comm, r, [&](weftRedOp_t op) {
        return weftReduceScatter(flat.data_ptr(), o.data, r.elements.count, r.elements.type, op, comm, nullptr);
      });
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> _reduce_scatter_base(at::Tensor& output, at::Tensor& in,
                                                      const c10d::ReduceScatterOptions& opts) override {
    checkPair(in, output, getSize(), "reduce_scatter_tensor", "input", "output");
    Reducing r = reducing(output, opts.reduceOp, "reduce_scatter_tensor");
    auto work = newWork(OpType::_REDUCE_SCATTER_BASE, "reduce_scatter_tensor", {output});
    at::Tensor src = input(in, work);
    Inout o = outputOf(output, work);
    post(work, [&](weftComm_t comm) {
      return withOp(comm, r, [&](weftRedOp_t op) {
        return weftReduceScatter(src.data_ptr(), o.data, r.elements.count, r.elements.type, op, comm, nullptr);
      });
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> reduce_scatter_tensor_coalesced(std::vector<at::Tensor>& outputs,
                                                                 std::vector<at::Tensor>& inputs,
                                                                 const c10d::ReduceScatterOptions& opts) override {
    TORCH_CHECK(outputs.size() == inputs.size(), "weft: reduce_scatter_tensor_coalesced: ", outputs.size(),
                " outputs for ", inputs.size(), " inputs");
    std::vector<Reducing> rs;
    for (size_t i = 0; i < inputs.size(); ++i) {
      checkPair(inputs[i], outputs[i], getSize(), "reduce_scatter_tensor_coalesced", "input", "output");
      rs.push_back(reducing(outputs[i], opts.reduceOp, "reduce_scatter_tensor_coalesced"));
    }
    auto work = newWork(OpType::REDUCE_SCATTER_TENSOR_COALESCED, "reduce_scatter_tensor_coalesced", outputs);
    auto [srcs, outs] = buffersOf(inputs, outputs, work);
    post(work, [&](weftComm_t comm) {
      weftGroupStart();
      for (size_t i = 0; i < inputs.size(); ++i)
        withOp(comm, rs[i], [&](weftRedOp_t op) {
          return weftReduceScatter(srcs[i].data_ptr(), outs[i].data, rs[i].elements.count, rs[i].elements.type, op,
                                   comm, nullptr);
        });
      return weftGroupEnd();
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> alltoall_base(at::Tensor& output, at::Tensor& in, std::vector<int64_t>& outSplits,
                                               std::vector<int64_t>& inSplits,
                                               const c10d::AllToAllOptions& /*opts*/) override {
    checkCpu(output, "all_to_all_single");
    checkCpu(in, "all_to_all_single");
    TORCH_CHECK(output.scalar_type() == in.scalar_type(), "weft: all_to_all_single: output is ", output.scalar_type(),
                " but input is ", in.scalar_type());
    auto work = newWork(OpType::ALLTOALL_BASE, "all_to_all_single", {output});
    at::Tensor src = input(in, work);
    Inout o = outputOf(output, work);
    int n = getSize();
    if (outSplits.empty() && inSplits.empty()) {
      TORCH_CHECK(in.numel() % n == 0, "weft: all_to_all_single: input of ", in.numel(),
                  " elements does not split evenly over ", n, " ranks");
      TORCH_CHECK(output.numel() == in.numel(), "weft: all_to_all_single: output has ", output.numel(),
                  " elements, input ", in.numel());
      at::Tensor block = in.reshape({-1}).narrow(0, 0, in.numel() / n);
      Elements e = moving(block);
      post(work, [&](weftComm_t comm) { return weftAllToAll(src.data_ptr(), o.data, e.count, e.type, comm, nullptr); });
      return work;
    }
    std::vector<size_t> sendCounts, sendDispls, recvCounts, recvDispls;
    splitsOf(in, inSplits, "input", &sendCounts, &sendDispls);
    splitsOf(output, outSplits, "output", &recvCounts, &recvDispls);
    weftDataType_t type = moving(in.reshape({-1}).narrow(0, 0, 0)).type;
    post(work, [&](weftComm_t comm) {
      return weftAllToAllv(src.data_ptr(), sendCounts.data(), sendDispls.data(), o.data, recvCounts.data(),
                           recvDispls.data(), type, comm, nullptr);
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> alltoall(std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
                                          const c10d::AllToAllOptions& /*opts*/) override {
    size_t n = static_cast<size_t>(getSize());
    TORCH_CHECK(outputs.size() == n && inputs.size() == n, "weft: all_to_all: expected ", n,
                " input and output tensors, got ", inputs.size(), " and ", outputs.size());
    for (size_t i = 0; i < n; ++i) {
      checkCpu(inputs[i], "all_to_all");
      checkCpu(outputs[i], "all_to_all");
      TORCH_CHECK(
          inputs[i].scalar_type() == inputs[0].scalar_type() && outputs[i].scalar_type() == inputs[0].scalar_type(),
          "weft: all_to_all: every tensor must have one dtype");
    }
    auto work = newWork(OpType::ALLTOALL, "all_to_all", outputs);
    std::vector<at::Tensor> ins;
    for (const at::Tensor& t : inputs) ins.push_back(t.reshape({-1}));
    at::Tensor flatIn = at::cat(ins);
    int64_t outTotal = 0;
    for (const at::Tensor& t : outputs) outTotal += t.numel();
    at::Tensor flatOut = at::empty({outTotal}, inputs[0].options());
    work->keep_ = {flatIn, flatOut};
    std::vector<at::Tensor> outs = outputs;
    work->copyOut_ = [flatOut, outs]() {
      int64_t at = 0;
      for (const at::Tensor& t : outs) {
        const_cast<at::Tensor&>(t).copy_(flatOut.narrow(0, at, t.numel()).view_as(t));
        at += t.numel();
      }
    };
    size_t scale = weftType(inputs[0].scalar_type()) ? 1 : inputs[0].element_size();
    weftDataType_t type = weftType(inputs[0].scalar_type()).value_or(weftUint8);
    std::vector<size_t> sc(n), sd(n), rc(n), rd(n);
    size_t s = 0, r = 0;
    for (size_t i = 0; i < n; ++i) {
      sc[i] = inputs[i].numel() * scale;
      sd[i] = s;
      s += sc[i];
      rc[i] = outputs[i].numel() * scale;
      rd[i] = r;
      r += rc[i];
    }
    post(work, [&](weftComm_t comm) {
      return weftAllToAllv(flatIn.data_ptr(), sc.data(), sd.data(), flatOut.data_ptr(), rc.data(), rd.data(), type,
                           comm, nullptr);
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> gather(std::vector<std::vector<at::Tensor>>& outputs, std::vector<at::Tensor>& inputs,
                                        const c10d::GatherOptions& opts) override {
    const at::Tensor& in = single(inputs, "gather");
    int root = checkRoot(opts.rootRank, "gather");
    bool isRoot = rootList(outputs, in, root, "gather", "output");
    auto work = newWork(OpType::GATHER, "gather", isRoot ? outputs[0] : std::vector<at::Tensor>{});
    at::Tensor src = input(in, work);
    at::Tensor flat;
    if (isRoot) flat = flatOutput(work, outputs[0], in);
    Elements e = moving(in);
    post(work, [&](weftComm_t comm) {
      return weftGather(src.data_ptr(), isRoot ? flat.data_ptr() : nullptr, e.count, e.type, root, comm, nullptr);
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> scatter(std::vector<at::Tensor>& outputs, std::vector<std::vector<at::Tensor>>& inputs,
                                         const c10d::ScatterOptions& opts) override {
    const at::Tensor& out = single(outputs, "scatter");
    int root = checkRoot(opts.rootRank, "scatter");
    bool isRoot = rootList(inputs, out, root, "scatter", "input");
    auto work = newWork(OpType::SCATTER, "scatter", {out});
    at::Tensor flat;
    if (isRoot) flat = concatenated(work, inputs[0]);
    Inout o = outputOf(out, work);
    Elements e = moving(out);
    post(work, [&](weftComm_t comm) {
      return weftScatter(isRoot ? flat.data_ptr() : nullptr, o.data, e.count, e.type, root, comm, nullptr);
    });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> send(std::vector<at::Tensor>& tensors, int dst, int /*tag*/) override {
    const at::Tensor& t = single(tensors, "send");
    int peer = checkPeer(dst, "send");
    auto work = newWork(OpType::SEND, "send", {t});
    at::Tensor src = input(t, work);
    Elements e = moving(t);
    post(work, [&](weftComm_t comm) { return weftSend(src.data_ptr(), e.count, e.type, peer, comm, nullptr); });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> recv(std::vector<at::Tensor>& tensors, int src, int /*tag*/) override {
    const at::Tensor& t = single(tensors, "recv");
    int peer = checkPeer(src, "recv");
    auto work = newWork(OpType::RECV, "recv", {t});
    work->sourceRank_ = peer;
    Inout o = outputOf(t, work);
    Elements e = moving(t);
    post(work, [&](weftComm_t comm) { return weftRecv(o.data, e.count, e.type, peer, comm, nullptr); });
    return work;
  }

  c10::intrusive_ptr<c10d::Work> recvAnysource(std::vector<at::Tensor>& /*tensors*/, int /*tag*/) override {
    TORCH_CHECK(false, "weft: recv from any source is not supported by weft; name the source rank");
  }

  c10::intrusive_ptr<c10d::Work> barrier(const c10d::BarrierOptions& /*opts*/) override {
    // Operations complete in order: a one-byte all-reduce that completes
    // means every earlier operation here has, and every rank reached it.
    auto work = newWork(OpType::BARRIER, "barrier", {});
    at::Tensor token = at::zeros({1}, at::kByte);
    work->keep_.push_back(token);
    post(work, [&](weftComm_t comm) {
      return weftAllReduce(token.data_ptr(), token.data_ptr(), 1, weftUint8, weftSum, comm, nullptr);
    });
    return work;
  }

 private:
  struct Reducing {
    Elements elements;
    weftRedOp_t op = weftSum;
    bool preMul = false;
    uint64_t scalar = 0;  // the factor in the tensor's type, for PreMulSum
  };
  // A buffer weft writes (the caller's tensor, or a contiguous copy).
  struct Inout {
    void* data = nullptr;
  };

  c10::intrusive_ptr<WeftWork> newWork(OpType type, const char* name, std::vector<at::Tensor> outputs) {
    return c10::make_intrusive<WeftWork>(engine_, getRank(), type, name, std::move(outputs), timeout_);
  }

  void post(const c10::intrusive_ptr<WeftWork>& work, const std::function<weftResult_t(weftComm_t)>& call) {
    engine_->post(work, call);
  }

  void checkCpu(const at::Tensor& t, const char* call) const {
    TORCH_CHECK(t.device().is_cpu(), "weft: ", call, ": a tensor on ", t.device().str(),
                "; weft's CUDA executor is not built yet, so this process group serves CPU tensors only (for GPU "
                "tensors use a backend string such as \"cpu:weft,cuda:nccl\")");
    TORCH_CHECK(t.layout() == at::kStrided, "weft: ", call, ": sparse tensors are not supported by weft");
  }

  const at::Tensor& single(const std::vector<at::Tensor>& tensors, const char* call) const {
    TORCH_CHECK(tensors.size() == 1, "weft: ", call, ": expected one tensor per call, got ", tensors.size());
    checkCpu(tensors[0], call);
    return tensors[0];
  }

  int checkRoot(int64_t root, const char* call) const {
    TORCH_CHECK(root >= 0 && root < getSize(), "weft: ", call, ": root ", root, " is outside [0, ", getSize(), ")");
    return static_cast<int>(root);
  }

  int checkPeer(int peer, const char* call) const {
    TORCH_CHECK(peer >= 0 && peer < getSize() && peer != getRank(), "weft: ", call, ": peer ", peer,
                " is not another rank of this group of ", getSize());
    return peer;
  }

  // A list of world-size tensors, each like ref.
  void checkList(const std::vector<at::Tensor>& list, const at::Tensor& ref, const char* call, const char* what) const {
    TORCH_CHECK(static_cast<int>(list.size()) == getSize(), "weft: ", call, ": ", list.size(), " ", what,
                " tensors for a group of ", getSize());
    for (const at::Tensor& t : list) {
      checkCpu(t, call);
      TORCH_CHECK(t.numel() == ref.numel() && t.scalar_type() == ref.scalar_type(), "weft: ", call, ": an ", what,
                  " tensor of ", t.numel(), " ", t.scalar_type(), " elements where ", ref.numel(), " ",
                  ref.scalar_type(), " were expected");
    }
  }

  // big must hold factor times small's elements, of one dtype.
  void checkPair(const at::Tensor& big, const at::Tensor& small, int factor, const char* call, const char* bigName,
                 const char* smallName) const {
    checkCpu(big, call);
    checkCpu(small, call);
    TORCH_CHECK(big.scalar_type() == small.scalar_type(), "weft: ", call, ": ", bigName, " is ", big.scalar_type(),
                " but ", smallName, " is ", small.scalar_type());
    TORCH_CHECK(big.numel() == small.numel() * factor, "weft: ", call, ": ", bigName, " has ", big.numel(),
                " elements; expected ", factor, " x ", small.numel(), " (", smallName, ")");
  }

  Reducing reducing(const at::Tensor& t, const c10d::ReduceOp& op, const char* call) const {
    Reducing r;
    at::ScalarType type = t.scalar_type();
    size_t count = static_cast<size_t>(t.numel());
    if (at::isComplexType(type)) {
      TORCH_CHECK(op == c10d::ReduceOp::SUM || op == c10d::ReduceOp::AVG, "weft: ", call,
                  ": complex tensors reduce with SUM or AVG only");
      type = c10::toRealValueType(type);
      count *= 2;
    }
    std::optional<weftDataType_t> wt = weftType(type);
    TORCH_CHECK(wt.has_value(), "weft: ", call, ": dtype ", t.scalar_type(), " is not supported by weft");
    r.elements = {*wt, count};
    switch (op.op_) {
      case c10d::ReduceOp::SUM: r.op = weftSum; break;
      case c10d::ReduceOp::AVG: r.op = weftAvg; break;
      case c10d::ReduceOp::PRODUCT: r.op = weftProd; break;
      case c10d::ReduceOp::MIN: r.op = weftMin; break;
      case c10d::ReduceOp::MAX: r.op = weftMax; break;
      case c10d::ReduceOp::PREMUL_SUM: {
        TORCH_CHECK(op.supplement_, "weft: ", call, ": PREMUL_SUM without its factor");
        auto* supplement = dynamic_cast<c10d::PreMulSumSupplement*>(op.supplement_.get());
        TORCH_CHECK(supplement != nullptr, "weft: ", call, ": PREMUL_SUM with an unknown supplement");
        double factor =
            supplement->tensor_factor.defined() ? supplement->tensor_factor.item<double>() : supplement->double_factor;
        at::Tensor scalar = at::scalar_tensor(factor, at::TensorOptions().dtype(type));
        std::memcpy(&r.scalar, scalar.data_ptr(), scalar.element_size());
        r.preMul = true;
        break;
      }
      default:
        TORCH_CHECK(false, "weft: ", call, ": reduce op ", static_cast<int>(op.op_),
                    " (BAND, BOR or BXOR) is not supported by weft");
    }
    return r;
  }

  // Runs call with the op; a PreMulSum op lives only for that call.
  weftResult_t withOp(weftComm_t comm, Reducing& r, const std::function<weftResult_t(weftRedOp_t)>& call) {
    if (!r.preMul) return call(r.op);
    weftRedOp_t op;
    weftResult_t rc = weftRedOpCreatePreMulSum(&op, &r.scalar, r.elements.type, weftScalarHostImmediate, comm);
    if (rc != weftSuccess) return rc;
    rc = call(op);
    weftRedOpDestroy(op, comm);
    return rc;
  }

  // The root's list (others pass none): true at the root.
  bool rootList(const std::vector<std::vector<at::Tensor>>& lists, const at::Tensor& ref, int root, const char* call,
                const char* what) const {
    if (root != getRank()) {
      TORCH_CHECK(lists.empty() || (lists.size() == 1 && lists[0].empty()), "weft: ", call, ": only the root passes ",
                  what, " tensors");
      return false;
    }
    TORCH_CHECK(lists.size() == 1, "weft: ", call, ": the root expects one ", what, " list, got ", lists.size());
    checkList(lists[0], ref, call, what);
    return true;
  }

  // One flat buffer for a list of world-size outputs like ref, copied into
  // them on completion.
  static at::Tensor flatOutput(const c10::intrusive_ptr<WeftWork>& work, const std::vector<at::Tensor>& outs,
                               const at::Tensor& ref) {
    at::Tensor flat = at::empty({static_cast<int64_t>(outs.size()) * ref.numel()}, ref.options());
    work->keep_.push_back(flat);
    work->copyOut_ = [flat, outs]() {
      for (size_t i = 0; i < outs.size(); ++i)
        outs[i].copy_(flat.narrow(0, static_cast<int64_t>(i) * outs[i].numel(), outs[i].numel()).view_as(outs[i]));
    };
    return flat;
  }

  // A list of inputs as one contiguous buffer, kept until completion.
  static at::Tensor concatenated(const c10::intrusive_ptr<WeftWork>& work, const std::vector<at::Tensor>& list) {
    std::vector<at::Tensor> flats;
    flats.reserve(list.size());
    for (const at::Tensor& t : list) flats.push_back(t.reshape({-1}));
    at::Tensor flat = at::cat(flats);
    work->keep_.push_back(flat);
    return flat;
  }

  // The coalesced forms: each input's contiguous buffer and each output's.
  std::pair<std::vector<at::Tensor>, std::vector<Inout>> buffersOf(const std::vector<at::Tensor>& inputs,
                                                                   const std::vector<at::Tensor>& outputs,
                                                                   const c10::intrusive_ptr<WeftWork>& work) {
    std::pair<std::vector<at::Tensor>, std::vector<Inout>> buffers;
    for (size_t i = 0; i < inputs.size(); ++i) {
      buffers.first.push_back(input(inputs[i], work));
      buffers.second.push_back(outputOf(outputs[i], work));
    }
    return buffers;
  }

  // An input weft only reads: contiguous, kept until completion.
  at::Tensor input(const at::Tensor& t, const c10::intrusive_ptr<WeftWork>& work) {
    at::Tensor c = t.contiguous();
    work->keep_.push_back(c);
    return c;
  }

  // A tensor weft writes in place (and reads): the tensor itself when
  // contiguous, else a copy that goes back on completion.
  Inout inPlace(const at::Tensor& t, const c10::intrusive_ptr<WeftWork>& work) {
    if (t.is_contiguous()) {
      work->keep_.push_back(t);
      return {t.data_ptr()};
    }
    at::Tensor c = t.contiguous();
    addCopyBack(work, t, c);
    return {c.data_ptr()};
  }

  // A tensor weft only writes.
  Inout outputOf(const at::Tensor& t, const c10::intrusive_ptr<WeftWork>& work) {
    if (t.is_contiguous()) {
      work->keep_.push_back(t);
      return {t.data_ptr()};
    }
    at::Tensor c = at::empty(t.sizes(), t.options());
    addCopyBack(work, t, c);
    return {c.data_ptr()};
  }

  static void addCopyBack(const c10::intrusive_ptr<WeftWork>& work, const at::Tensor& dst, const at::Tensor& src) {
    work->keep_.push_back(src);
    std::function<void()> before = std::move(work->copyOut_);
    at::Tensor d = dst;
    work->copyOut_ = [before, d, src]() mutable {
      if (before) before();
      d.copy_(src);
    };
  }

  // Counts and displacements (in weft elements) of dim-0 splits of t.
  void splitsOf(const at::Tensor& t, const std::vector<int64_t>& splits, const char* what, std::vector<size_t>* counts,
                std::vector<size_t>* displs) const {
    int n = getSize();
    TORCH_CHECK(t.dim() > 0, "weft: all_to_all_single: a 0-d ", what, " with split sizes");
    int64_t rows = t.size(0);
    int64_t rowElements = rows == 0 ? 0 : t.numel() / rows;
    std::vector<int64_t> sizes = splits;
    if (sizes.empty()) {
      TORCH_CHECK(rows % n == 0, "weft: all_to_all_single: ", what, " of ", rows, " rows does not split evenly over ",
                  n, " ranks");
      sizes.assign(n, rows / n);
    }
    TORCH_CHECK(static_cast<int>(sizes.size()) == n, "weft: all_to_all_single: ", sizes.size(), " ", what,
                " split sizes for a group of ", n);
    int64_t total = 0;
    for (int64_t s : sizes) {
      TORCH_CHECK(s >= 0, "weft: all_to_all_single: a negative ", what, " split size ", s);
      total += s;
    }
    TORCH_CHECK(total == rows, "weft: all_to_all_single: ", what, " split sizes add up to ", total, " but the ", what,
                " has ", rows, " rows");
    size_t scale = weftType(t.scalar_type()) ? 1 : t.element_size();
    size_t at = 0;
    for (int64_t s : sizes) {
      size_t c = static_cast<size_t>(s * rowElements) * scale;
      counts->push_back(c);
      displs->push_back(at);
      at += c;
    }
  }

  c10::intrusive_ptr<Options> options_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<Engine> engine_;
};

}  // namespace
}  // namespace weft_torch

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  namespace py = pybind11;
  py::module::import("torch.distributed");
  py::class_<weft_torch::WeftBackend, c10d::Backend, c10::intrusive_ptr<weft_torch::WeftBackend>>(m, "WeftBackend")
      .def(py::init([](const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, int64_t timeoutMs,
                       std::string groupName, std::vector<uint64_t> globalRanks) {
             py::gil_scoped_release release;  // init waits on the store and on peers
             return c10::make_intrusive<weft_torch::WeftBackend>(
                 store, rank, size, std::chrono::milliseconds(timeoutMs), std::move(groupName), std::move(globalRanks));
           }),
           py::arg("store"), py::arg("rank"), py::arg("size"), py::arg("timeout_ms"), py::arg("group_name") = "",
           py::arg("global_ranks") = std::vector<uint64_t>{});
  m.def("version", [] {
    int v = 0;
    weftGetVersion(&v);
    return v;
  });
}
