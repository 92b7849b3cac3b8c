// weft::Bucketer: the C++ face of include/weft/bucket.h (the contract is
// described there). Errors become weft::Error.
//
//   weft::Bucketer bucketer(comm, weft::BucketerOptions{}.firstBucket(1 << 20).cap(25 << 20));
//   int w = bucketer.addParam<float>("fc1.weight", weights.size());
//   bucketer.finalize();
//   std::span<float> grad = bucketer.gradient<float>(w);   // view mode: write gradients here
//   ... backward: bucketer.markReady(w); ...
//   bucketer.finish();
#pragma once

#include <span>
#include <string>

#include "weft/bucket.h"
#include "weft/weft.hpp"

namespace weft {

// weftBucketerConfig_t with chainable setters.
struct BucketerOptions {
  weftBucketerConfig_t config = WEFT_BUCKETER_CONFIG_INITIALIZER;
  BucketerOptions& firstBucket(size_t bytes) {
    config.firstBucketBytes = bytes;
    return *this;
  }
  BucketerOptions& cap(size_t bytes) {
    config.bucketCapBytes = bytes;
    return *this;
  }
  BucketerOptions& mode(weftBucketMode_t mode) {
    config.mode = mode;
    return *this;
  }
  BucketerOptions& reduction(weftBucketReduction_t reduction) {
    config.reduction = reduction;
    return *this;
  }
  BucketerOptions& op(weftRedOp_t op) {
    config.op = op;
    return *this;
  }
  BucketerOptions& rebuildOrder(bool rebuild) {
    config.rebuildOrder = rebuild ? 1 : 0;
    return *this;
  }
  BucketerOptions& stream(weftStream_t stream) {
    config.stream = stream;
    return *this;
  }
};

class Bucketer {
 public:
  explicit Bucketer(const Communicator& comm, const BucketerOptions& options = {}) : Bucketer(comm.handle(), options) {}
  // Over a handle of the C API (not owned: it must outlive the bucketer).
  explicit Bucketer(weftComm_t comm, const BucketerOptions& options = {}) : comm_(comm) {
    check(weftBucketerCreate(comm_, &options.config, &bucketer_), comm_);
  }
  ~Bucketer() {
    if (bucketer_ != nullptr) weftBucketerDestroy(bucketer_);
  }
  Bucketer(const Bucketer&) = delete;
  Bucketer& operator=(const Bucketer&) = delete;

  // View mode: the gradient lives in the bucketer (see gradient()).
  template <typename T>
  int addParam(const std::string& name, size_t count) {
    int index = -1;
    check(weftBucketerAddParam(bucketer_, name.c_str(), nullptr, count, dataTypeOf<T>(), &index), comm_);
    return index;
  }
  // Copy-in mode: the gradient stays in the program's buffer.
  template <typename T>
  int addParam(const std::string& name, std::span<T> grad) {
    int index = -1;
    check(weftBucketerAddParam(bucketer_, name.c_str(), grad.data(), grad.size(), dataTypeOf<T>(), &index), comm_);
    return index;
  }
  // Any type by its weftDataType_t (float16, bfloat16, ...).
  int addParam(const std::string& name, void* grad, size_t count, weftDataType_t type) {
    int index = -1;
    check(weftBucketerAddParam(bucketer_, name.c_str(), grad, count, type, &index), comm_);
    return index;
  }
  void finalize() { check(weftBucketerFinalize(bucketer_), comm_); }

  // Valid until layoutVersion() changes (once, after the first finish()).
  void* gradient(int index) {
    void* grad = nullptr;
    check(weftBucketerGradient(bucketer_, index, &grad), comm_);
    return grad;
  }
  template <typename T>
  std::span<T> gradient(int index, size_t count) {
    return std::span<T>(static_cast<T*>(gradient(index)), count);
  }
  void markReady(int index) { check(weftBucketerMarkReady(bucketer_, index), comm_); }
  void finish() { check(weftBucketerFinish(bucketer_), comm_); }

  weftBucketStats_t stats() const {
    weftBucketStats_t stats{};
    check(weftBucketerStats(bucketer_, &stats), comm_);
    return stats;
  }
  unsigned long long layoutVersion() const { return stats().layoutVersion; }
  int bucketCount() const {
    int n = 0;
    check(weftBucketerBucketCount(bucketer_, &n), comm_);
    return n;
  }
  weftBucketInfo_t bucket(int index) const {
    weftBucketInfo_t info{};
    check(weftBucketerBucketInfo(bucketer_, index, &info), comm_);
    return info;
  }
  weftBucketer_t handle() const { return bucketer_; }

 private:
  weftComm_t comm_ = nullptr;
  weftBucketer_t bucketer_ = nullptr;
};

}  // namespace weft
