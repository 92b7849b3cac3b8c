// Ranks as threads of one process with the C++ API: each thread owns a
// communicator, posts an all-reduce and waits on its work handle.
//
//   ./build/examples/threads_allreduce 4
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "weft/weft.hpp"

int main(int argc, char** argv) {
  int nranks = argc > 1 ? atoi(argv[1]) : 4;
  weft::UniqueId id = weft::UniqueId::create();
  std::vector<std::thread> ranks;
  std::vector<int> ok(nranks, 0);
  for (int r = 0; r < nranks; ++r)
    ranks.emplace_back([&, r] {
      weft::Communicator comm(nranks, id, r);
      std::vector<double> gradients(1 << 16, 0.5 * (r + 1));
      weft::Work work = comm.allReduce<double>(std::span<double>(gradients), weftAvg);
      // ... compute that does not need the gradients could run here ...
      work.wait();
      ok[r] = gradients.back() == 0.25 * (nranks + 1);
    });
  for (auto& t : ranks) t.join();
  int good = 0;
  for (int v : ok) good += v;
  printf("%d of %d thread ranks got the average %.3f\n", good, nranks, 0.25 * (nranks + 1));
  return good == nranks ? 0 : 1;
}
