// What the bucketer costs the backward pass: markReady of every gradient,
// with the collective posted by each gradient that completes a bucket, on a
// one-rank host communicator (so that no peer's timing enters: what remains
// is the bucketer's bookkeeping and the post into the communicator's
// queue). finish() is outside the timed part. Items are parameters:
// items_per_second gives the per-parameter cost.
//   bucketer_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <vector>

#include "weft/bucket.hpp"

namespace {

weft::Communicator& oneRank() {
  static weft::Communicator comm(1, weft::UniqueId::create(), 0);
  return comm;
}

// Times markReady of every gradient, last registered first, per iteration;
// finish() is untimed.
void markEveryIteration(benchmark::State& state, weft::Bucketer& bucketer, const std::vector<int>& index) {
  bucketer.finalize();
  for (auto _ : state) {
    for (size_t p = index.size(); p-- > 0;) bucketer.markReady(index[p]);
    state.PauseTiming();
    bucketer.finish();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(index.size()));
}

// range(0): parameters; range(1): elements per parameter; range(2): 1 when
// every parameter fills a bucket of its own (a launch per markReady).
void BM_MarkReadyAndLaunch(benchmark::State& state) {
  int params = static_cast<int>(state.range(0));
  size_t count = static_cast<size_t>(state.range(1));
  bool bucketEach = state.range(2) != 0;
  size_t bytes = count * sizeof(float);
  weft::BucketerOptions options;
  if (bucketEach) options.firstBucket(bytes).cap(bytes);
  weft::Bucketer bucketer(oneRank(), options.rebuildOrder(false));
  std::vector<int> index;
  for (int p = 0; p < params; ++p) index.push_back(bucketer.addParam<float>("p", count));
  markEveryIteration(state, bucketer, index);
  state.counters["buckets"] = bucketer.bucketCount();
}
BENCHMARK(BM_MarkReadyAndLaunch)
    ->ArgNames({"params", "elems", "bucket_each"})
    ->Args({1000, 16, 0})
    ->Args({1000, 16, 1})
    ->Args({1000, 4096, 1})
    ->Args({10000, 16, 0})
    ->Unit(benchmark::kMicrosecond);

// Copy-in mode adds a memcpy of each gradient into its slot.
void BM_MarkReadyCopyIn(benchmark::State& state) {
  int params = static_cast<int>(state.range(0));
  size_t count = static_cast<size_t>(state.range(1));
  std::vector<std::vector<float>> grads(static_cast<size_t>(params), std::vector<float>(count, 1.0f));
  weft::Bucketer bucketer(oneRank(), weft::BucketerOptions{}.mode(weftBucketCopyIn).rebuildOrder(false));
  std::vector<int> index;
  for (auto& grad : grads) index.push_back(bucketer.addParam<float>("p", std::span<float>(grad)));
  markEveryIteration(state, bucketer, index);
}
BENCHMARK(BM_MarkReadyCopyIn)->ArgNames({"params", "elems"})->Args({1000, 16})->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
