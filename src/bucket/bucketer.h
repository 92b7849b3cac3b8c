// The bucketer behind weftBucketer_t (see include/weft/bucket.h for the
// contract). It sits above the C API: buckets are ordinary weftAllReduce or
// weftReduceScatter calls on the communicator, posted in bucket order, and
// their completion is the communicator's sequence numbers.
//
// Cost per gradient marked ready: a lock, a few stores, and for the
// gradient that completes a bucket one collective posted (host: a queue
// entry; ~1 us). Per iteration: one 8-byte all-reduce of the "did every rank
// mark every gradient" check, posted after the last bucket.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bucket/bucket_device.h"
#include "bucket/bucket_layout.h"
#include "core/status.h"
#include "weft/bucket.h"

namespace weft {

class Bucketer {
 public:
  static Result<std::unique_ptr<Bucketer>> create(weftComm_t comm, const weftBucketerConfig_t* config);
  ~Bucketer();

  weftComm_t comm() const { return comm_; }
  Result<int> addParam(const char* name, void* grad, size_t count, weftDataType_t type);
  Status finalize();
  Result<void*> gradient(int index);
  Status markReady(int index);
  Status finish();
  Result<weftBucketStats_t> stats();
  Result<int> bucketCount();
  Result<weftBucketInfo_t> bucketInfo(int bucket);
  Status paramLocation(int index, int* bucket, size_t* offset);
  // Waits for launched buckets (destroy).
  Status drain();

 private:
  struct Param {
    BucketParam spec;
    void* grad = nullptr;  // copy-in: the program's buffer
    bool ready = false;
  };
  struct Bucket {
    void* storage = nullptr;
    size_t shardOffset = 0, shardCount = 0;
    int pending = 0;  // gradients not yet ready this iteration
    bool launched = false;
    unsigned long long seq = 0;
    uint64_t launchedNs = 0, completedNs = 0;
    double launchedAt = -1, completedAt = -1;  // the last finished iteration's, for bucketInfo
  };

  Bucketer(weftComm_t comm, const weftBucketerConfig_t& config, int rank, int nranks,
           std::unique_ptr<BucketDevice> device);
  Status finalizeLocked();
  Status applyLayout(const std::vector<int>& order, bool moveContents);
  Status checkIndex(const char* call, int index) const;
  Status launchReadyLocked();
  void noteCompletions();
  Status launch(size_t bucket);
  Status waitLaunched();
  Status rebuildOrder();
  void resetIteration();
  void recordStats();
  std::string paramName(int index) const;
  // The communicator's last error as a Status, for a C API call that failed.
  Status commError(weftResult_t result, const char* what) const;

  weftComm_t comm_;
  weftBucketerConfig_t config_;
  int rank_, nranks_;
  std::unique_ptr<BucketDevice> device_;

  std::mutex mutex_;
  std::vector<Param> params_;
  bool finalized_ = false;
  Status broken_;           // layout mismatch: nothing more can run
  std::vector<int> order_;  // expected ready order
  BucketLayout layout_;
  std::vector<Bucket> buckets_;
  size_t nextLaunch_ = 0;
  size_t firstInFlight_ = 0;  // buckets before it were seen complete
  bool rebuilt_ = false;
  unsigned long long layoutVersion_ = 0;

  // This iteration.
  unsigned long long iteration_ = 0;
  std::vector<int> observed_;  // ready order seen
  uint64_t firstReadyNs_ = 0, lastReadyNs_ = 0, firstLaunchNs_ = 0;
  Status launchError_;
  int64_t check_ = 0;             // the per-iteration check's value, on the host
  void* checkStorage_ = nullptr;  // ... and where it is reduced
  unsigned long long checkSeq_ = 0;
  weftBucketStats_t stats_{};
};

}  // namespace weft
