#include "bucket/bucketer.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "api/comm.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/types.h"

namespace weft {
namespace {

// The fields of version 0.1's weftBucketerConfig_t.
constexpr size_t kKnownConfig = offsetof(weftBucketerConfig_t, stream) + sizeof(weftStream_t);
constexpr int kNamedMissing = 4;  // unmarked gradients named in a message

Status checkConfig(const weftBucketerConfig_t& config, int rank) {
  if (config.magic != WEFT_BUCKETER_CONFIG_MAGIC || config.size < kKnownConfig)
    return WEFT_ERROR(weftInvalidArgument,
                      "rank %d: weftBucketerCreate: config (magic 0x%x, size %zu) was not set up with "
                      "WEFT_BUCKETER_CONFIG_INITIALIZER",
                      rank, config.magic, config.size);
  if (config.firstBucketBytes == 0 || config.bucketCapBytes == 0)
    return WEFT_ERROR(weftInvalidArgument,
                      "rank %d: weftBucketerCreate: firstBucketBytes=%zu and bucketCapBytes=%zu must both be > 0", rank,
                      config.firstBucketBytes, config.bucketCapBytes);
  if (config.mode != weftBucketView && config.mode != weftBucketCopyIn)
    return WEFT_ERROR(weftInvalidArgument, "rank %d: weftBucketerCreate: mode=%d is not a weftBucketMode_t", rank,
                      config.mode);
  if (config.reduction != weftBucketAllReduce && config.reduction != weftBucketReduceScatter)
    return WEFT_ERROR(weftInvalidArgument, "rank %d: weftBucketerCreate: reduction=%d is not a weftBucketReduction_t",
                      rank, config.reduction);
  if (config.op != weftSum && config.op != weftAvg)
    return WEFT_ERROR(weftInvalidArgument,
                      "rank %d: weftBucketerCreate: op=%d: gradients are reduced with weftSum "
                      "or weftAvg",
                      rank, config.op);
  if (config.rebuildOrder != 0 && config.rebuildOrder != 1)
    return WEFT_ERROR(weftInvalidArgument, "rank %d: weftBucketerCreate: rebuildOrder=%d: expected 0 or 1", rank,
                      config.rebuildOrder);
  return Status::ok();
}

double secondsBetween(uint64_t from, uint64_t to) {
  return from == 0 || to < from ? 0.0 : static_cast<double>(to - from) * 1e-9;
}

}  // namespace

Result<std::unique_ptr<Bucketer>> Bucketer::create(weftComm_t comm, const weftBucketerConfig_t* config) {
  WEFT_CHECK(checkLiveComm(comm));
  weftBucketerConfig_t resolved = WEFT_BUCKETER_CONFIG_INITIALIZER;
  if (config != nullptr) {
    WEFT_CHECK(checkConfig(*config, comm->rank));
    memcpy(&resolved, config, kKnownConfig);
    resolved.size = sizeof(resolved);
  }
  std::unique_ptr<BucketDevice> device;
  if (comm->options.cudaDevice >= 0) {
    auto gpu = cudaBucketDevice(comm->options.cudaDevice, resolved.stream);
    if (!gpu.isOk()) return gpu.status();
    device = gpu.take();
  } else {
    if (resolved.stream != nullptr)
      return WEFT_ERROR(weftInvalidArgument,
                        "rank %d: weftBucketerCreate: config.stream must be NULL for a host communicator (got %p)",
                        comm->rank, resolved.stream);
    device = hostBucketDevice();
  }
  return std::unique_ptr<Bucketer>(new Bucketer(comm, resolved, comm->rank, comm->nranks, std::move(device)));
}

Bucketer::Bucketer(weftComm_t comm, const weftBucketerConfig_t& config, int rank, int nranks,
                   std::unique_ptr<BucketDevice> device)
    : comm_(comm), config_(config), rank_(rank), nranks_(nranks), device_(std::move(device)) {}

Bucketer::~Bucketer() {
  for (Bucket& bucket : buckets_) device_->release(bucket.storage);
  if (checkStorage_ != nullptr) device_->release(checkStorage_);
}

std::string Bucketer::paramName(int index) const {
  return format("'%s' (#%d)", params_[static_cast<size_t>(index)].spec.name.c_str(), index);
}

Status Bucketer::commError(weftResult_t result, const char* what) const {
  return Status(result, format("rank %d: bucketer: %s: %s", rank_, what, weftGetLastError(comm_)));
}

Status Bucketer::checkIndex(const char* call, int index) const {
  if (index < 0 || static_cast<size_t>(index) >= params_.size())
    return WEFT_ERROR(weftInvalidArgument, "rank %d: %s: index %d is outside the %zu registered parameters", rank_,
                      call, index, params_.size());
  return Status::ok();
}

Result<int> Bucketer::addParam(const char* name, void* grad, size_t count, weftDataType_t type) {
  std::lock_guard<std::mutex> lock(mutex_);
  int index = static_cast<int>(params_.size());
  std::string label = name != nullptr && name[0] != '\0' ? name : format("param%d", index);
  if (finalized_)
    return WEFT_ERROR(weftInvalidUsage,
                      "rank %d: weftBucketerAddParam(%s): the buckets were laid out already; "
                      "register every parameter before weftBucketerFinalize or the first markReady",
                      rank_, label.c_str());
  if (!validType(type))
    return WEFT_ERROR(weftInvalidArgument, "rank %d: weftBucketerAddParam(%s): datatype %d is not a weftDataType_t",
                      rank_, label.c_str(), static_cast<int>(type));
  if (count > SIZE_MAX / 2 / typeSize(type))
    return WEFT_ERROR(weftInvalidArgument, "rank %d: weftBucketerAddParam(%s): count %zu of %s overflows", rank_,
                      label.c_str(), count, typeName(type));
  if (config_.mode == weftBucketCopyIn) {
    if (grad == nullptr && count > 0)
      return WEFT_ERROR(weftInvalidArgument,
                        "rank %d: weftBucketerAddParam(%s): copy-in mode needs the gradient buffer (grad is NULL)",
                        rank_, label.c_str());
    if (reinterpret_cast<uintptr_t>(grad) % typeSize(type) != 0)
      return WEFT_ERROR(weftInvalidArgument, "rank %d: weftBucketerAddParam(%s): grad=%p is not aligned to %s", rank_,
                        label.c_str(), grad, typeName(type));
  } else if (grad != nullptr) {
    return WEFT_ERROR(weftInvalidArgument,
                      "rank %d: weftBucketerAddParam(%s): in view mode the bucketer's storage is the gradient; pass "
                      "grad=NULL and take the buffer from weftBucketerGradient (or use weftBucketCopyIn)",
                      rank_, label.c_str());
  }
  if (params_.size() >= static_cast<size_t>(INT32_MAX))
    return WEFT_ERROR(weftInvalidArgument, "rank %d: weftBucketerAddParam: too many parameters", rank_);
  Param param;
  param.spec = BucketParam{label, count, type};
  param.grad = grad;
  params_.push_back(std::move(param));
  return index;
}

Status Bucketer::finalize() {
  std::lock_guard<std::mutex> lock(mutex_);
  return finalizeLocked();
}

// Lays out the buckets in the expected order and checks, once, that every
// rank has the same layout: an all-gather of (digest, parameters, buckets,
// bytes), so that a rank that differs is named with what differs.
Status Bucketer::finalizeLocked() {
  if (!broken_.isOk()) return broken_;
  if (finalized_) return Status::ok();
  finalized_ = true;
  order_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) order_[i] = static_cast<int>(params_.size() - 1 - i);
  WEFT_CHECK(applyLayout(order_, false));
  auto checkStorage = device_->allocate(sizeof(check_));
  if (!checkStorage.isOk()) return checkStorage.status();
  checkStorage_ = checkStorage.value();

  uint64_t settings = static_cast<uint64_t>(config_.firstBucketBytes) * 1000003u ^ config_.bucketCapBytes;
  settings = settings * 31 + static_cast<uint64_t>(config_.mode) * 7 + static_cast<uint64_t>(config_.reduction) * 3 +
             static_cast<uint64_t>(config_.op);
  size_t totalBytes = 0;
  for (const auto& bucket : layout_.buckets) totalBytes += bucket.bytes;
  std::vector<BucketParam> specs;
  for (const Param& param : params_) specs.push_back(param.spec);
  uint64_t mine[4] = {layoutDigest(specs, layout_, settings), params_.size(), layout_.buckets.size(), totalBytes};
  std::vector<uint64_t> all(4 * static_cast<size_t>(nranks_));
  weftResult_t rc = weftAllGather(mine, all.data(), 4, weftUint64, comm_, nullptr);
  if (rc == weftSuccess) rc = weftCommSynchronize(comm_);
  if (rc != weftSuccess) {
    broken_ = commError(rc, "the layout check (an all-gather) failed");
    return broken_;
  }
  std::string differ;
  int differing = 0;
  for (int r = 0; r < nranks_; ++r) {
    const uint64_t* theirs = &all[4 * static_cast<size_t>(r)];
    if (std::equal(theirs, theirs + 4, all.data())) continue;
    if (++differing <= 4)
      differ += format("%s rank %d (%llu parameters, %llu buckets, %llu bytes)", differing > 1 ? ";" : "", r,
                       static_cast<unsigned long long>(theirs[1]), static_cast<unsigned long long>(theirs[2]),
                       static_cast<unsigned long long>(theirs[3]));
  }
  if (differing > 0) {
    broken_ = WEFT_ERROR(
        weftInvalidUsage,
        "rank %d: bucket layouts differ across ranks: rank 0 has %llu parameters in %llu buckets of %llu bytes, "
        "but%s%s; "
        "every rank must register the same parameters (count and type, in the same order) with the same bucket "
        "settings",
        rank_, static_cast<unsigned long long>(all[1]), static_cast<unsigned long long>(all[2]),
        static_cast<unsigned long long>(all[3]), differ.c_str(),
        differing > 4 ? format(" and %d more", differing - 4).c_str() : "");
    return broken_;
  }
  WEFT_INFO(kLogBucket, "rank %d: %zu parameters in %zu buckets, %zu bytes, layout %016llx", rank_, params_.size(),
            layout_.buckets.size(), totalBytes, static_cast<unsigned long long>(mine[0]));
  return Status::ok();
}

// Makes the buckets of a new layout; moveContents carries every gradient's
// current values over to its new place (the views move after a rebuild).
Status Bucketer::applyLayout(const std::vector<int>& order, bool moveContents) {
  std::vector<BucketParam> specs;
  specs.reserve(params_.size());
  for (const Param& param : params_) specs.push_back(param.spec);
  size_t pad = config_.reduction == weftBucketReduceScatter ? static_cast<size_t>(nranks_) : 1;
  BucketLayout layout = layoutBuckets(specs, order, config_.firstBucketBytes, config_.bucketCapBytes, pad);
  std::vector<Bucket> buckets(layout.buckets.size());
  for (size_t b = 0; b < buckets.size(); ++b) {
    auto storage = device_->allocate(layout.buckets[b].bytes);
    if (!storage.isOk()) {
      for (size_t k = 0; k < b; ++k) device_->release(buckets[k].storage);
      return storage.status();
    }
    buckets[b].storage = storage.value();
    buckets[b].pending = static_cast<int>(layout.buckets[b].params.size());
    if (pad > 1) {
      buckets[b].shardCount = layout.buckets[b].count / pad;
      buckets[b].shardOffset = buckets[b].shardCount * static_cast<size_t>(rank_);
    } else {
      buckets[b].shardCount = layout.buckets[b].count;
    }
  }
  if (moveContents) {
    for (size_t i = 0; i < params_.size(); ++i) {
      size_t bytes = params_[i].spec.count * typeSize(params_[i].spec.type);
      size_t typeBytes = typeSize(params_[i].spec.type);
      char* from = static_cast<char*>(buckets_[static_cast<size_t>(layout_.bucketOf[i])].storage) +
                   layout_.offsetOf[i] * typeBytes;
      char* to =
          static_cast<char*>(buckets[static_cast<size_t>(layout.bucketOf[i])].storage) + layout.offsetOf[i] * typeBytes;
      WEFT_CHECK(device_->copy(to, from, bytes));
    }
  }
  for (Bucket& bucket : buckets_) device_->release(bucket.storage);
  buckets_ = std::move(buckets);
  layout_ = std::move(layout);
  order_ = order;
  nextLaunch_ = 0;
  firstInFlight_ = 0;
  return Status::ok();
}

Result<void*> Bucketer::gradient(int index) {
  std::lock_guard<std::mutex> lock(mutex_);
  WEFT_CHECK(checkIndex("weftBucketerGradient", index));
  WEFT_CHECK(finalizeLocked());
  const Param& param = params_[static_cast<size_t>(index)];
  if (config_.mode == weftBucketCopyIn) return param.grad;
  size_t b = static_cast<size_t>(layout_.bucketOf[static_cast<size_t>(index)]);
  return static_cast<void*>(static_cast<char*>(buckets_[b].storage) +
                            layout_.offsetOf[static_cast<size_t>(index)] * typeSize(param.spec.type));
}

Status Bucketer::markReady(int index) {
  std::lock_guard<std::mutex> lock(mutex_);
  WEFT_CHECK(checkIndex("weftBucketerMarkReady", index));
  WEFT_CHECK(finalizeLocked());
  Param& param = params_[static_cast<size_t>(index)];
  if (param.ready)
    return WEFT_ERROR(weftInvalidUsage,
                      "rank %d: weftBucketerMarkReady: the gradient of %s was marked ready twice in iteration %llu%s",
                      rank_, paramName(index).c_str(), iteration_ + 1,
                      observed_.size() == params_.size()
                          ? " (every gradient was marked already: call weftBucketerFinish before the next backward)"
                          : "");
  uint64_t now = monotonicNanos();
  if (firstReadyNs_ == 0) firstReadyNs_ = now;
  lastReadyNs_ = now;
  param.ready = true;
  observed_.push_back(index);
  size_t b = static_cast<size_t>(layout_.bucketOf[static_cast<size_t>(index)]);
  if (config_.mode == weftBucketCopyIn) {
    size_t typeBytes = typeSize(param.spec.type);
    WEFT_CHECK(device_->copy(
        static_cast<char*>(buckets_[b].storage) + layout_.offsetOf[static_cast<size_t>(index)] * typeBytes, param.grad,
        param.spec.count * typeBytes));
  }
  --buckets_[b].pending;
  Status launched = launchReadyLocked();
  noteCompletions();
  return launched;
}

// Buckets that completed since the last look get their completion time now
// (finish() times the rest): one sequence-number test per bucket in flight.
void Bucketer::noteCompletions() {
  if (!device_->hostQueue()) return;
  for (; firstInFlight_ < nextLaunch_; ++firstInFlight_) {
    Bucket& bucket = buckets_[firstInFlight_];
    int done = 0;
    if (bucket.seq == 0 || weftCommTestSeq(comm_, bucket.seq, &done) != weftSuccess || done == 0) return;
    bucket.completedNs = monotonicNanos();
  }
}

// Buckets go strictly in bucket order: a full bucket waits for the ones
// before it, so every rank posts the same collectives in the same order.
Status Bucketer::launchReadyLocked() {
  while (nextLaunch_ < buckets_.size() && buckets_[nextLaunch_].pending == 0) {
    Status status = launch(nextLaunch_++);
    if (!status.isOk()) {
      if (launchError_.isOk()) launchError_ = status;
      return status;
    }
  }
  return Status::ok();
}

Status Bucketer::launch(size_t b) {
  Bucket& bucket = buckets_[b];
  const BucketLayout::Bucket& shape = layout_.buckets[b];
  bucket.launched = true;
  bucket.launchedNs = monotonicNanos();
  if (firstLaunchNs_ == 0) firstLaunchNs_ = bucket.launchedNs;
  if (!launchError_.isOk()) return launchError_;  // the communicator failed: post nothing more
  auto stream = device_->beforeLaunch();
  if (!stream.isOk()) return stream.status();
  weftRedOp_t op = static_cast<weftRedOp_t>(config_.op);
  BackgroundPosting background;  // markReady returns to backward at once
  weftResult_t rc;
  if (config_.reduction == weftBucketReduceScatter) {
    char* shard = static_cast<char*>(bucket.storage) + bucket.shardOffset * typeSize(shape.type);
    rc = weftReduceScatter(bucket.storage, shard, bucket.shardCount, shape.type, op, comm_, stream.value());
  } else {
    rc = weftAllReduce(bucket.storage, bucket.storage, shape.count, shape.type, op, comm_, stream.value());
  }
  if (rc != weftSuccess) return commError(rc, format("bucket %zu's collective", b).c_str());
  rc = weftCommGetSeq(comm_, &bucket.seq);
  if (rc != weftSuccess) return commError(rc, "weftCommGetSeq");
  return Status::ok();
}

// Completion, seen bucket by bucket in order (each wait returns as its
// bucket completes, so the last one's time is when communication ended).
Status Bucketer::waitLaunched() {
  Status first;
  if (!device_->hostQueue()) {
    Status done = device_->afterLaunches();
    uint64_t now = monotonicNanos();
    for (Bucket& bucket : buckets_)
      if (bucket.launched) bucket.completedNs = now;
    return done;
  }
  for (Bucket& bucket : buckets_) {
    if (!bucket.launched || bucket.seq == 0) continue;
    weftResult_t rc = weftCommWaitSeq(comm_, bucket.seq);
    if (bucket.completedNs == 0) bucket.completedNs = monotonicNanos();
    if (rc != weftSuccess && first.isOk()) first = commError(rc, "a bucket's collective failed");
  }
  return first;
}

Status Bucketer::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  WEFT_CHECK(finalizeLocked());
  // Gradients never marked: this rank still launches every bucket, so that
  // no peer waits for it, and says which; the check tells the others.
  std::vector<int> missing;
  for (size_t i = 0; i < params_.size(); ++i)
    if (!params_[i].ready) missing.push_back(static_cast<int>(i));
  Status result;
  if (!missing.empty()) {
    std::string names;
    for (size_t k = 0; k < missing.size() && k < kNamedMissing; ++k)
      names += (k > 0 ? ", " : "") + paramName(missing[k]);
    if (missing.size() > kNamedMissing) names += format(" and %zu more", missing.size() - kNamedMissing);
    result = WEFT_ERROR(weftInvalidUsage,
                        "rank %d: weftBucketerFinish: %zu gradient(s) were never marked ready in iteration %llu: %s; "
                        "every rank's reduced gradients of this iteration are incomplete",
                        rank_, missing.size(), iteration_ + 1, names.c_str());
    for (Bucket& bucket : buckets_) bucket.pending = 0;
    (void)launchReadyLocked();
  }
  Status launched = launchError_;
  // The check: the highest rank (plus one) that missed a gradient, 0 if none.
  bool checked = false;
  if (launched.isOk()) {
    check_ = missing.empty() ? 0 : rank_ + 1;
    Status staged = device_->copy(checkStorage_, &check_, sizeof(check_));
    auto stream = staged.isOk() ? device_->beforeLaunch() : Result<weftStream_t>(staged);
    weftResult_t rc = stream.isOk()
                          ? weftAllReduce(checkStorage_, checkStorage_, 1, weftInt64, weftMax, comm_, stream.value())
                          : weftInternalError;
    if (rc == weftSuccess) rc = weftCommGetSeq(comm_, &checkSeq_);
    if (rc == weftSuccess)
      checked = true;
    else
      launched = stream.isOk() ? commError(rc, "the iteration's check") : stream.status();
  }
  Status waited = waitLaunched();
  if (checked && device_->hostQueue() && waited.isOk()) {
    weftResult_t rc = weftCommWaitSeq(comm_, checkSeq_);
    if (rc != weftSuccess) waited = commError(rc, "the iteration's check failed");
  }
  if (checked && waited.isOk()) waited = device_->readBack(&check_, checkStorage_, sizeof(check_));
  if (result.isOk() && !launched.isOk()) result = launched;
  if (result.isOk() && !waited.isOk()) result = waited;
  if (result.isOk() && check_ != 0)
    result = WEFT_ERROR(weftInvalidUsage,
                        "rank %d: weftBucketerFinish: rank %lld finished iteration %llu without marking every gradient "
                        "ready (its error names them); this iteration's reduced gradients are incomplete",
                        rank_, static_cast<long long>(check_ - 1), iteration_ + 1);
  bool clean = waited.isOk() && launched.isOk() && check_ == 0;
  if (clean && config_.mode == weftBucketCopyIn) {
    for (size_t i = 0; i < params_.size(); ++i) {
      const Param& param = params_[i];
      const Bucket& bucket = buckets_[static_cast<size_t>(layout_.bucketOf[i])];
      size_t typeBytes = typeSize(param.spec.type);
      // All-reduce: the whole gradient; reduce-scatter: the part in this rank's shard.
      size_t begin = layout_.offsetOf[i], end = begin + param.spec.count;
      size_t lo = std::max(begin, bucket.shardOffset), hi = std::min(end, bucket.shardOffset + bucket.shardCount);
      if (hi <= lo) continue;
      Status copied = device_->copy(static_cast<char*>(param.grad) + (lo - begin) * typeBytes,
                                    static_cast<char*>(bucket.storage) + lo * typeBytes, (hi - lo) * typeBytes);
      if (!copied.isOk() && result.isOk()) result = copied;
    }
  }
  recordStats();
  // The order rank 0 saw becomes everyone's, once, and only after an
  // iteration every rank completed (the check says so on every rank alike).
  if (clean && iteration_ == 0 && config_.rebuildOrder == 1 && !rebuilt_) {
    rebuilt_ = true;
    Status rebuilt = rebuildOrder();
    if (!rebuilt.isOk() && result.isOk()) result = rebuilt;
  }
  resetIteration();
  return result;
}

Status Bucketer::rebuildOrder() {
  std::vector<int32_t> order(observed_.begin(), observed_.end());
  order.resize(params_.size());
  if (params_.empty()) return Status::ok();
  weftResult_t rc = weftBroadcast(order.data(), order.data(), order.size(), weftInt32, 0, comm_, nullptr);
  if (rc == weftSuccess) rc = weftCommSynchronize(comm_);
  if (rc != weftSuccess) return commError(rc, "broadcasting the observed gradient order failed");
  std::vector<int> adopted(order.begin(), order.end());
  if (adopted == order_) return Status::ok();
  WEFT_CHECK(applyLayout(adopted, config_.mode == weftBucketView));
  ++layoutVersion_;
  WEFT_INFO(kLogBucket, "rank %d: buckets rebuilt in the order rank 0 observed: %zu buckets", rank_,
            layout_.buckets.size());
  return Status::ok();
}

void Bucketer::recordStats() {
  weftBucketStats_t s{};
  s.iteration = iteration_ + 1;
  s.layoutVersion = layoutVersion_;
  s.buckets = static_cast<int>(buckets_.size());
  uint64_t lastDone = 0;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    s.bytes += layout_.buckets[b].bytes;
    lastDone = std::max(lastDone, bucket.completedNs);
    bucket.launchedAt = bucket.launched ? secondsBetween(firstReadyNs_, bucket.launchedNs) : -1;
    bucket.completedAt = bucket.launched ? secondsBetween(firstReadyNs_, bucket.completedNs) : -1;
  }
  s.backwardCompute = secondsBetween(firstReadyNs_, lastReadyNs_);
  s.communication = secondsBetween(firstLaunchNs_, lastDone);
  s.exposed = secondsBetween(lastReadyNs_, lastDone);
  s.overlap = std::max(0.0, s.communication - s.exposed);
  stats_ = s;
  WEFT_INFO(kLogBucket,
            "rank %d: iteration %llu: %d buckets, %zu bytes; backward %.3f ms, communication %.3f ms, exposed %.3f ms "
            "(%.0f%% of communication), overlap %.3f ms",
            rank_, s.iteration, s.buckets, s.bytes, s.backwardCompute * 1e3, s.communication * 1e3, s.exposed * 1e3,
            s.communication > 0 ? 100.0 * s.exposed / s.communication : 0.0, s.overlap * 1e3);
}

void Bucketer::resetIteration() {
  for (Param& param : params_) param.ready = false;
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bucket = buckets_[b];
    bucket.pending = static_cast<int>(layout_.buckets[b].params.size());
    bucket.launched = false;
    bucket.seq = 0;
    bucket.launchedNs = bucket.completedNs = 0;
  }
  nextLaunch_ = 0;
  firstInFlight_ = 0;
  observed_.clear();
  firstReadyNs_ = lastReadyNs_ = firstLaunchNs_ = 0;
  launchError_ = Status::ok();
  ++iteration_;
}

Result<weftBucketStats_t> Bucketer::stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  weftBucketStats_t s = stats_;
  s.layoutVersion = layoutVersion_;  // a rebuild happens after the figures are taken
  return s;
}

Result<int> Bucketer::bucketCount() {
  std::lock_guard<std::mutex> lock(mutex_);
  WEFT_CHECK(finalizeLocked());
  return static_cast<int>(buckets_.size());
}

Result<weftBucketInfo_t> Bucketer::bucketInfo(int b) {
  std::lock_guard<std::mutex> lock(mutex_);
  WEFT_CHECK(finalizeLocked());
  if (b < 0 || static_cast<size_t>(b) >= buckets_.size())
    return WEFT_ERROR(weftInvalidArgument, "rank %d: weftBucketerBucketInfo: bucket %d is outside the %zu buckets",
                      rank_, b, buckets_.size());
  const BucketLayout::Bucket& shape = layout_.buckets[static_cast<size_t>(b)];
  const Bucket& bucket = buckets_[static_cast<size_t>(b)];
  weftBucketInfo_t info{};
  info.type = shape.type;
  info.count = shape.count;
  info.bytes = shape.bytes;
  info.firstParam = shape.params.front();
  info.params = static_cast<int>(shape.params.size());
  info.shardOffset = bucket.shardOffset;
  info.shardCount = bucket.shardCount;
  info.launchedAt = bucket.launchedAt;
  info.completedAt = bucket.completedAt;
  return info;
}

Status Bucketer::paramLocation(int index, int* bucket, size_t* offset) {
  std::lock_guard<std::mutex> lock(mutex_);
  WEFT_CHECK(checkIndex("weftBucketerParamLocation", index));
  WEFT_CHECK(finalizeLocked());
  if (bucket != nullptr) *bucket = layout_.bucketOf[static_cast<size_t>(index)];
  if (offset != nullptr) *offset = layout_.offsetOf[static_cast<size_t>(index)];
  return Status::ok();
}

Status Bucketer::drain() {
  std::lock_guard<std::mutex> lock(mutex_);
  return waitLaunched();
}

}  // namespace weft
