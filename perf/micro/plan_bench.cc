// Plan building: how long one rank takes to build its own program, and how
// many bytes that program holds, for 8..16384 ranks (ring, tree, and
// hierarchical over nodes of 8; the target for a
// 16384-rank two-channel ring all-reduce: 4 MiB and 50 ms). Built the way
// the tuner builds it: the rank's program only, over the topology's ring
// and its reverse.
//   plan_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "algorithms/registry.h"

namespace {

weft::PlanRequest ringRequest(weft::Collective collective, int nranks, int channels) {
  weft::RingOrder ring(static_cast<size_t>(nranks));
  std::iota(ring.begin(), ring.end(), 0);
  std::shuffle(ring.begin(), ring.end(), std::mt19937(7));
  weft::PlanRequest request;
  request.collective = collective;
  request.nranks = nranks;
  request.rank = nranks / 3;
  request.root = collective == weft::Collective::Broadcast ? 0 : -1;
  request.nChannels = channels;
  request.rings = {ring, weft::RingOrder(ring.rbegin(), ring.rend())};
  // Nodes of 8 ranks, for the hierarchical plans.
  for (int r = 0; r < nranks; ++r) request.nodeOfRank.push_back(r / 8);
  return request;
}

// range(0): ranks; range(1): algorithm (weft::Algorithm); range(2): collective.
void BM_BuildOwnPlan(benchmark::State& state) {
  auto algorithm = static_cast<weft::Algorithm>(state.range(1));
  auto collective = static_cast<weft::Collective>(state.range(2));
  weft::PlanRequest request = ringRequest(collective, static_cast<int>(state.range(0)), 2);
  const weft::AlgorithmEntry& entry = weft::algorithmEntry(algorithm);
  size_t bytes = 0, steps = 0;
  for (auto _ : state) {
    weft::Plan plan = entry.build(request);
    bytes = plan.bytes();
    steps = plan.steps.size();
    benchmark::DoNotOptimize(plan.steps.data());
  }
  state.counters["plan_bytes"] = static_cast<double>(bytes);
  state.counters["steps"] = static_cast<double>(steps);
  state.SetLabel(std::string(entry.name) + " " + weft::collectiveName(collective));
}

void ringSizes(benchmark::internal::Benchmark* b) {
  for (int n = 8; n <= 16384; n *= 4) b->Args({n, static_cast<int>(weft::Algorithm::Ring), 0});
  b->Args({16384, static_cast<int>(weft::Algorithm::Ring), 0});
  for (int n : {8, 1024, 16384}) b->Args({n, static_cast<int>(weft::Algorithm::Ring), 3});  // broadcast
  for (int n : {8, 64, 1024}) b->Args({n, static_cast<int>(weft::Algorithm::TwoShot), 0});
  for (int n : {8, 64, 512, 4096, 16384}) b->Args({n, static_cast<int>(weft::Algorithm::Tree), 0});
  for (int n : {16, 128, 1024, 8192, 16384}) b->Args({n, static_cast<int>(weft::Algorithm::Hierarchical), 0});
}
BENCHMARK(BM_BuildOwnPlan)->ArgNames({"ranks", "algo", "coll"})->Apply(ringSizes)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
