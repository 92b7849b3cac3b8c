// weft's C++ API: an RAII communicator, typed spans, and a work handle per
// operation. It wraps the C API in weft.h; errors become weft::Error.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "weft/weft.h"

namespace weft {

// Thrown for any weftResult_t other than weftSuccess.
class Error : public std::runtime_error {
 public:
  Error(weftResult_t code, const std::string& message) : std::runtime_error(message), code_(code) {}
  weftResult_t code() const { return code_; }

 private:
  weftResult_t code_;
};

inline void check(weftResult_t result, weftComm_t comm = nullptr) {
  if (result != weftSuccess)
    throw Error(result, std::string(weftGetErrorString(result)) + ": " + weftGetLastError(comm));
}

// The weftDataType_t of T (a type weft has no counterpart for does not compile).
template <typename T>
constexpr weftDataType_t dataTypeOf() {
  if constexpr (std::is_same_v<T, int8_t>)
    return weftInt8;
  else if constexpr (std::is_same_v<T, uint8_t>)
    return weftUint8;
  else if constexpr (std::is_same_v<T, int32_t>)
    return weftInt32;
  else if constexpr (std::is_same_v<T, uint32_t>)
    return weftUint32;
  else if constexpr (std::is_same_v<T, int64_t>)
    return weftInt64;
  else if constexpr (std::is_same_v<T, uint64_t>)
    return weftUint64;
  else if constexpr (std::is_same_v<T, float>)
    return weftFloat32;
  else if constexpr (std::is_same_v<T, double>)
    return weftFloat64;
  else
    static_assert(sizeof(T) == 0, "weft has no data type for T");
}

// The unique id as a value type.
struct UniqueId {
  weftUniqueId id{};
  static UniqueId create() {
    UniqueId out;
    check(weftGetUniqueId(&out.id));
    return out;
  }
};

// One posted operation; operations complete in the order they were posted.
class Work {
 public:
  Work() = default;
  Work(weftComm_t comm, unsigned long long seq) : comm_(comm), seq_(seq) {}
  // Blocks until the operation (and all before it) completed; throws its error.
  void wait() const {
    if (comm_ != nullptr) check(weftCommWaitSeq(comm_, seq_), comm_);
  }
  // True when complete; throws if the communicator failed.
  bool test() const {
    if (comm_ == nullptr) return true;
    int done = 0;
    check(weftCommTestSeq(comm_, seq_, &done), comm_);
    return done != 0;
  }
  unsigned long long sequence() const { return seq_; }

 private:
  weftComm_t comm_ = nullptr;
  unsigned long long seq_ = 0;
};

// A host-memory communicator; destroyed (after its work finished) with the object.
class Communicator {
 public:
  Communicator(int nranks, const UniqueId& id, int rank) { check(weftCommInitRank(&comm_, nranks, id.id, rank)); }
  // With options: weftConfig_t config = WEFT_CONFIG_INITIALIZER; config.maxChannels = 2; ...
  // With config.blocking = 0 the constructor returns while the communicator
  // forms; asyncError() says weftInProgress until it has.
  Communicator(int nranks, const UniqueId& id, int rank, const weftConfig_t& config) {
    weftResult_t result = weftCommInitRankConfig(&comm_, nranks, id.id, rank, &config);
    if (result != weftInProgress) check(result);
  }
  ~Communicator() {
    if (comm_ != nullptr) weftCommDestroy(comm_);
  }
  Communicator(Communicator&& other) noexcept : comm_(other.comm_) { other.comm_ = nullptr; }
  Communicator& operator=(Communicator&& other) noexcept {
    if (this != &other) {
      if (comm_ != nullptr) weftCommDestroy(comm_);
      comm_ = other.comm_;
      other.comm_ = nullptr;
    }
    return *this;
  }
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  // Takes ownership of a handle made by the C API (nullptr: empty).
  explicit Communicator(weftComm_t adopted) : comm_(adopted) {}

  int rank() const {
    int r = 0;
    check(weftCommUserRank(comm_, &r), comm_);
    return r;
  }
  int size() const {
    int n = 0;
    check(weftCommCount(comm_, &n), comm_);
    return n;
  }
  weftComm_t handle() const { return comm_; }
  // weftSuccess, weftInProgress while a non-blocking init runs, or the error
  // that stopped the communicator (weftCommGetAsyncError).
  weftResult_t asyncError() const {
    weftResult_t state = weftSuccess;
    check(weftCommGetAsyncError(comm_, &state), comm_);
    return state;
  }
  // True unless the object is empty (moved from, aborted, or a split that
  // left this rank out).
  explicit operator bool() const { return comm_ != nullptr; }

  // Every rank calls it; ranks of one color form a new communicator, ordered
  // by key (then by rank). WEFT_SPLIT_NOCOLOR gives an empty Communicator.
  // config nullptr: this communicator's own options.
  Communicator split(int color, int key, const weftConfig_t* config = nullptr) const {
    weftComm_t child = nullptr;
    check(weftCommSplit(comm_, color, key, &child, config), comm_);
    return Communicator(child);
  }
  // Every rank not in exclude calls it (after a peer died, say): a new
  // communicator of those ranks, in their old order.
  Communicator shrink(std::span<const int> exclude) const {
    weftComm_t child = nullptr;
    check(weftCommShrink(comm_, exclude.data(), static_cast<int>(exclude.size()), &child, nullptr), comm_);
    return Communicator(child);
  }

  // Stops outstanding work; peers see a remote error. The object is empty after.
  void abort() {
    if (comm_ != nullptr) weftCommAbort(comm_);
    comm_ = nullptr;
  }
  void synchronize() const { check(weftCommSynchronize(comm_), comm_); }

  template <typename T>
  Work allReduce(std::span<const T> send, std::span<T> recv, weftRedOp_t op = weftSum) {
    requireSize(recv.size() == send.size(), "allReduce: recv and send differ in size");
    check(weftAllReduce(send.data(), recv.data(), send.size(), dataTypeOf<T>(), op, comm_, nullptr), comm_);
    return last();
  }
  template <typename T>
  Work allReduce(std::span<T> inPlace, weftRedOp_t op = weftSum) {
    check(weftAllReduce(inPlace.data(), inPlace.data(), inPlace.size(), dataTypeOf<T>(), op, comm_, nullptr), comm_);
    return last();
  }
  // send holds size() blocks of recv.size() elements.
  template <typename T>
  Work reduceScatter(std::span<const T> send, std::span<T> recv, weftRedOp_t op = weftSum) {
    requireSize(send.size() == recv.size() * static_cast<size_t>(size()), "reduceScatter: send must be size() x recv");
    check(weftReduceScatter(send.data(), recv.data(), recv.size(), dataTypeOf<T>(), op, comm_, nullptr), comm_);
    return last();
  }
  template <typename T>
  Work allGather(std::span<const T> send, std::span<T> recv) {
    requireSize(recv.size() == send.size() * static_cast<size_t>(size()), "allGather: recv must be size() x send");
    check(weftAllGather(send.data(), recv.data(), send.size(), dataTypeOf<T>(), comm_, nullptr), comm_);
    return last();
  }
  template <typename T>
  Work broadcast(std::span<T> buffer, int root) {
    check(weftBroadcast(buffer.data(), buffer.data(), buffer.size(), dataTypeOf<T>(), root, comm_, nullptr), comm_);
    return last();
  }
  template <typename T>
  Work reduce(std::span<const T> send, std::span<T> recv, int root, weftRedOp_t op = weftSum) {
    check(weftReduce(send.data(), recv.data(), send.size(), dataTypeOf<T>(), op, root, comm_, nullptr), comm_);
    return last();
  }
  // send and recv hold size() blocks of count elements each.
  template <typename T>
  Work allToAll(std::span<const T> send, std::span<T> recv) {
    requireSize(send.size() == recv.size() && send.size() % static_cast<size_t>(size()) == 0,
                "allToAll: send and recv must both be size() blocks of equal length");
    check(weftAllToAll(send.data(), recv.data(), send.size() / static_cast<size_t>(size()), dataTypeOf<T>(), comm_,
                       nullptr),
          comm_);
    return last();
  }
  // A PreMulSum op for T with this rank's scalar (read now), for the
  // reductions of this communicator; destroyOp frees it.
  template <typename T>
  weftRedOp_t preMulSum(T scalar) {
    weftRedOp_t op;
    check(weftRedOpCreatePreMulSum(&op, &scalar, dataTypeOf<T>(), weftScalarHostImmediate, comm_), comm_);
    return op;
  }
  void destroyOp(weftRedOp_t op) { check(weftRedOpDestroy(op, comm_), comm_); }

  // Per-peer counts and displacements (elements), size() entries each; every
  // block must lie inside its span.
  template <typename T>
  Work allToAllv(std::span<const T> send, std::span<const size_t> sendCounts, std::span<const size_t> sendDispls,
                 std::span<T> recv, std::span<const size_t> recvCounts, std::span<const size_t> recvDispls) {
    size_t n = static_cast<size_t>(size());
    requireSize(sendCounts.size() == n && sendDispls.size() == n && recvCounts.size() == n && recvDispls.size() == n,
                "allToAllv: counts and displacements must have size() entries each");
    for (size_t peer = 0; peer < n; ++peer)
      requireSize((sendCounts[peer] == 0 ||
                   (sendDispls[peer] <= send.size() && sendCounts[peer] <= send.size() - sendDispls[peer])) &&
                      (recvCounts[peer] == 0 ||
                       (recvDispls[peer] <= recv.size() && recvCounts[peer] <= recv.size() - recvDispls[peer])),
                  "allToAllv: a block lies outside its span");
    check(weftAllToAllv(send.data(), sendCounts.data(), sendDispls.data(), recv.data(), recvCounts.data(),
                        recvDispls.data(), dataTypeOf<T>(), comm_, nullptr),
          comm_);
    return last();
  }
  // recv: size() x send.size() at the root (ignored, may be empty, elsewhere).
  template <typename T>
  Work gather(std::span<const T> send, std::span<T> recv, int root) {
    if (rank() == root)
      requireSize(recv.size() == send.size() * static_cast<size_t>(size()),
                  "gather: recv must be size() x send at the root");
    check(weftGather(send.data(), recv.data(), send.size(), dataTypeOf<T>(), root, comm_, nullptr), comm_);
    return last();
  }
  // send: size() x recv.size() at the root (ignored, may be empty, elsewhere).
  template <typename T>
  Work scatter(std::span<const T> send, std::span<T> recv, int root) {
    if (rank() == root)
      requireSize(send.size() == recv.size() * static_cast<size_t>(size()),
                  "scatter: send must be size() x recv at the root");
    check(weftScatter(send.data(), recv.data(), recv.size(), dataTypeOf<T>(), root, comm_, nullptr), comm_);
    return last();
  }
  template <typename T>
  Work send(std::span<const T> data, int peer) {
    check(weftSend(data.data(), data.size(), dataTypeOf<T>(), peer, comm_, nullptr), comm_);
    return last();
  }
  template <typename T>
  Work recv(std::span<T> data, int peer) {
    check(weftRecv(data.data(), data.size(), dataTypeOf<T>(), peer, comm_, nullptr), comm_);
    return last();
  }

 private:
  Work last() const {
    unsigned long long seq = 0;
    check(weftCommGetSeq(comm_, &seq), comm_);
    return Work(comm_, seq);
  }
  static void requireSize(bool ok, const char* what) {
    if (!ok) throw Error(weftInvalidArgument, what);
  }
  weftComm_t comm_ = nullptr;
};

// Scoped weftGroupStart/weftGroupEnd. Call end() to see its error; the
// destructor ends an open group without throwing (it may run during unwinding).
class Group {
 public:
  Group() { check(weftGroupStart()); }
  ~Group() {
    if (!ended_) weftGroupEnd();
  }
  void end() {
    ended_ = true;
    check(weftGroupEnd());
  }

 private:
  bool ended_ = false;
};

}  // namespace weft
