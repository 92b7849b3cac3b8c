// The collective cases every multi-rank test runs: each collective x type x
// op x in-place/out-of-place x count, with inputs whose results are exact,
// checked bit for bit.
#pragma once

#include <string>
#include <vector>

#include "weft/weft.h"

namespace weft::test {

enum class Coll { AllReduce, ReduceScatter, AllGather, Broadcast, Reduce, AllToAll, Gather, Scatter };

struct Case {
  Coll coll;
  weftDataType_t type;
  weftRedOp_t op;
  bool inPlace;
  size_t count;
  int root;
};

std::string describe(const Case& c);

// Where runCase puts its buffers: host memory by default; device suites
// set memory their device accepts and the host can read and write (the
// emulated device's weftMemAlloc, CUDA managed memory).
struct BufferSpace {
  void* (*allocate)(size_t bytes);
  void (*release)(void* p);
};
void setBufferSpace(const BufferSpace* space);  // nullptr: host memory
// The counts the suites run: empty, one, odd, just under a slot of floats,
// and largest (more than a whole FIFO's worth, and not a multiple of anything).
constexpr size_t kLargestCount = (1u << 20) + 3;
inline std::vector<size_t> caseCounts(size_t largest = kLargestCount) { return {0, 1, 7, 1023, largest}; }
// Every case for nranks ranks, over the given counts (roots cycle).
std::vector<Case> allCases(int nranks, const std::vector<size_t>& counts = caseCounts());
// Runs one case on this rank; "" when the output is exactly right.
std::string runCase(weftComm_t comm, int rank, int n, const Case& c);
// Runs cases until five fail or the communicator fails; the failures joined.
std::string runCases(weftComm_t comm, int rank, int n, const std::vector<Case>& cases);

}  // namespace weft::test
