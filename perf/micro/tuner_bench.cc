// The tuner's decision time: what a call pays to find its algorithm once
// its size class is decided (an atomic load), and what deciding a class
// costs the first time (every candidate priced by the cost model), for
// 8..16384 ranks on one node and on nodes of 8.
//   tuner_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include "algorithms/tuner.h"

namespace {

weft::TunerConfig config(int nranks, int perNode) {
  weft::TunerConfig c;
  c.nranks = nranks;
  for (int r = 0; r < nranks; ++r) c.nodeOfRank.push_back(r / perNode);
  c.shape = weft::costShape(nranks, c.nodeOfRank, 8, 131072);
  c.maxChannels = 4;
  return c;
}

// range(0): ranks; range(1): ranks per node.
void BM_DecideDecidedClass(benchmark::State& state) {
  weft::Tuner tuner(config(static_cast<int>(state.range(0)), static_cast<int>(state.range(1))));
  tuner.decide(weft::Collective::AllReduce, 1 << 20);
  size_t bytes = (1 << 20) + 12345;
  for (auto _ : state) benchmark::DoNotOptimize(tuner.decide(weft::Collective::AllReduce, bytes).entry);
}

void BM_PriceEveryCandidate(benchmark::State& state) {
  weft::Tuner tuner(config(static_cast<int>(state.range(0)), static_cast<int>(state.range(1))));
  size_t candidates = 0;
  for (auto _ : state) {
    std::vector<weft::TuneCandidate> all = tuner.candidates(weft::Collective::AllReduce, 1 << 20);
    candidates = all.size();
    benchmark::DoNotOptimize(all.data());
  }
  state.counters["candidates"] = static_cast<double>(candidates);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (int n : {8, 64, 512, 4096, 16384}) {
    b->Args({n, n});
    if (n > 8) b->Args({n, 8});
  }
}
BENCHMARK(BM_DecideDecidedClass)->ArgNames({"ranks", "per_node"})->Apply(shapes);
BENCHMARK(BM_PriceEveryCandidate)->ArgNames({"ranks", "per_node"})->Apply(shapes);

}  // namespace

BENCHMARK_MAIN();
