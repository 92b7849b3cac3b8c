// The C API of include/weft/bucket.h over weft::Bucketer. Errors are
// recorded as the communicator's last error (weftGetLastError(comm)).
#include "api/comm.h"
#include "bucket/bucketer.h"

using namespace weft;

struct weftBucketer {
  std::unique_ptr<Bucketer> impl;
};

namespace {

// The bucketer's communicator must still be alive: a bucketer outliving it
// gets an error, not a use of freed memory.
Status checkBucketer(weftBucketer_t bucketer, const char* call) {
  if (bucketer == nullptr || bucketer->impl == nullptr)
    return WEFT_ERROR(weftInvalidArgument, "%s: bucketer is NULL", call);
  if (!isLiveComm(bucketer->impl->comm()))
    return WEFT_ERROR(weftInvalidUsage, "%s: the bucketer's communicator was destroyed; destroy the bucketer first",
                      call);
  return Status::ok();
}

weftComm* commOf(weftBucketer_t bucketer) {
  return bucketer != nullptr && bucketer->impl != nullptr && isLiveComm(bucketer->impl->comm()) ? bucketer->impl->comm()
                                                                                                : nullptr;
}

weftResult_t report(weftBucketer_t bucketer, const Status& status) { return setLastError(commOf(bucketer), status); }

}  // namespace

#define WEFT_BUCKETER_CALL(bucketer, call)                        \
  do {                                                            \
    Status checked_ = checkBucketer((bucketer), (call));          \
    if (!checked_.isOk()) return setLastError(nullptr, checked_); \
  } while (0)

extern "C" {

weftResult_t weftBucketerCreate(weftComm_t comm, const weftBucketerConfig_t* config, weftBucketer_t* bucketer) {
  if (bucketer == nullptr)
    return setLastError(nullptr, WEFT_ERROR(weftInvalidArgument, "weftBucketerCreate: bucketer is NULL"));
  *bucketer = nullptr;
  auto made = Bucketer::create(comm, config);
  if (!made.isOk()) return setLastError(isLiveComm(comm) ? comm : nullptr, made.status());
  *bucketer = new weftBucketer{made.take()};
  return weftSuccess;
}

weftResult_t weftBucketerAddParam(weftBucketer_t bucketer, const char* name, void* grad, size_t count,
                                  weftDataType_t type, int* index) {
  WEFT_BUCKETER_CALL(bucketer, "weftBucketerAddParam");
  auto added = bucketer->impl->addParam(name, grad, count, type);
  if (!added.isOk()) return report(bucketer, added.status());
  if (index != nullptr) *index = added.value();
  return weftSuccess;
}

weftResult_t weftBucketerFinalize(weftBucketer_t bucketer) {
  WEFT_BUCKETER_CALL(bucketer, "weftBucketerFinalize");
  return report(bucketer, bucketer->impl->finalize());
}

weftResult_t weftBucketerGradient(weftBucketer_t bucketer, int index, void** grad) {
  WEFT_BUCKETER_CALL(bucketer, "weftBucketerGradient");
  if (grad == nullptr) return report(bucketer, WEFT_ERROR(weftInvalidArgument, "weftBucketerGradient: grad is NULL"));
  auto found = bucketer->impl->gradient(index);
  if (!found.isOk()) return report(bucketer, found.status());
  *grad = found.value();
  return weftSuccess;
}

weftResult_t weftBucketerMarkReady(weftBucketer_t bucketer, int index) {
  WEFT_BUCKETER_CALL(bucketer, "weftBucketerMarkReady");
  return report(bucketer, bucketer->impl->markReady(index));
}

weftResult_t weftBucketerFinish(weftBucketer_t bucketer) {
  WEFT_BUCKETER_CALL(bucketer, "weftBucketerFinish");
  return report(bucketer, bucketer->impl->finish());
}

weftResult_t weftBucketerStats(weftBucketer_t bucketer, weftBucketStats_t* stats) {
  WEFT_BUCKETER_CALL(bucketer, "weftBucketerStats");
  if (stats == nullptr) return report(bucketer, WEFT_ERROR(weftInvalidArgument, "weftBucketerStats: stats is NULL"));
  auto got = bucketer->impl->stats();
  if (!got.isOk()) return report(bucketer, got.status());
  *stats = got.value();
  return weftSuccess;
}

weftResult_t weftBucketerBucketCount(weftBucketer_t bucketer, int* buckets) {
  WEFT_BUCKETER_CALL(bucketer, "weftBucketerBucketCount");
  if (buckets == nullptr)
    return report(bucketer, WEFT_ERROR(weftInvalidArgument, "weftBucketerBucketCount: buckets is NULL"));
  auto got = bucketer->impl->bucketCount();
  if (!got.isOk()) return report(bucketer, got.status());
  *buckets = got.value();
  return weftSuccess;
}

weftResult_t weftBucketerBucketInfo(weftBucketer_t bucketer, int bucket, weftBucketInfo_t* info) {
  WEFT_BUCKETER_CALL(bucketer, "weftBucketerBucketInfo");
  if (info == nullptr) return report(bucketer, WEFT_ERROR(weftInvalidArgument, "weftBucketerBucketInfo: info is NULL"));
  auto got = bucketer->impl->bucketInfo(bucket);
  if (!got.isOk()) return report(bucketer, got.status());
  *info = got.value();
  return weftSuccess;
}

weftResult_t weftBucketerParamLocation(weftBucketer_t bucketer, int index, int* bucket, size_t* offset) {
  WEFT_BUCKETER_CALL(bucketer, "weftBucketerParamLocation");
  return report(bucketer, bucketer->impl->paramLocation(index, bucket, offset));
}

weftResult_t weftBucketerDestroy(weftBucketer_t bucketer) {
  if (bucketer == nullptr) return weftSuccess;
  Status drained = isLiveComm(bucketer->impl->comm()) ? bucketer->impl->drain() : Status::ok();
  weftComm* comm = commOf(bucketer);
  delete bucketer;
  return setLastError(comm, drained);
}

}  // extern "C"
