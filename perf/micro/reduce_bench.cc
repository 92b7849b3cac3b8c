// The host reduction kernels in GB/s (bytes of output written per second),
// for every type with sum and max, against memcpy of the same bytes: a
// 256 KiB working set (two slots' worth, in cache, what the executor reduces
// a slot at a time) and a 64 MiB one (memory-bound). The kernel set is the
// one weft picks at start-up (weft-info prints it) and every other set this
// CPU runs, side by side.
//   reduce_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "core/types.h"
#include "exec/reduce.h"

namespace {

// range(0): bytes of output; range(1): type; range(2): op (-1: memcpy);
// range(3): kernel set, an index into availableReduceKernels().
void BM_Reduce(benchmark::State& state) {
  size_t bytes = static_cast<size_t>(state.range(0));
  auto type = static_cast<weftDataType_t>(state.range(1));
  int op = static_cast<int>(state.range(2));
  // Ones: every type reduces them without overflow or NaN, as a steady input.
  std::vector<unsigned char> a(bytes), b(bytes), out(bytes);
  size_t count = bytes / weft::typeSize(type);
  const weft::ReduceKernels& set = *weft::availableReduceKernels()[static_cast<size_t>(state.range(3))];
  weft::ReduceFn fn = op >= 0 ? set.reduce[type][op] : nullptr;
  memset(a.data(), 0, bytes);
  memset(b.data(), 0, bytes);
  for (auto _ : state) {
    if (fn != nullptr)
      fn(out.data(), a.data(), b.data(), count);
    else
      memcpy(out.data(), a.data(), bytes);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  state.SetLabel(std::string(op >= 0 ? (op == weftSum ? "sum " : "max ") : "memcpy ") + weft::typeName(type) + " " +
                 (op >= 0 ? set.isa : ""));
}

void cases(benchmark::internal::Benchmark* b) {
  for (int64_t bytes : {int64_t{256} << 10, int64_t{64} << 20}) {
    b->Args({bytes, weftFloat32, -1, 0});
    int64_t sets = static_cast<int64_t>(weft::availableReduceKernels().size());
    for (int type = 0; type < weftNumTypes; ++type)
      for (int op : {static_cast<int>(weftSum), static_cast<int>(weftMax)})
        for (int64_t set = 0; set < sets; ++set) b->Args({bytes, type, op, set});
  }
}
BENCHMARK(BM_Reduce)->ArgNames({"bytes", "type", "op", "set"})->Apply(cases);

}  // namespace

BENCHMARK_MAIN();
