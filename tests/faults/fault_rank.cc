// One rank of a fault trial (tests/faults/fault_suite.py starts them, with
// WEFT_RANK, WEFT_NRANKS and WEFT_COMM_ID set): a random sequence of verified
// collectives, the same on every rank (one seed), until the calls run out or
// weft reports an error.
//
//   fault_rank --seed S [--calls N]
//
// Prints one line the suite reads, and exits with:
//   0  every call succeeded with exactly the right result   "done calls=N"
//   3  weft returned an error                               "error at=T call=I code=C: MESSAGE"
//   4  a call succeeded with a wrong result                 "wrong call=I: WHAT"
//   2  bad usage
// T is the wall clock (seconds since the epoch) when the error came back, so
// the suite can tell how long after the fault it took.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "common/collective_cases.h"
#include "common/p2p_cases.h"
#include "weft/weft.h"

namespace {

double wallSeconds() {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec) + 1e-9 * static_cast<double>(now.tv_nsec);
}

int reportError(int call, weftResult_t code, const std::string& message) {
  printf("error at=%.6f call=%d code=%s: %s\n", wallSeconds(), call, weftGetErrorString(code), message.c_str());
  fflush(stdout);
  return 3;
}

// The i-th call of the sequence: every rank draws the same.
weft::test::Case drawCase(std::mt19937_64& rng, int nranks) {
  using weft::test::Coll;
  weft::test::Case c{};
  c.coll = static_cast<Coll>(rng() % 5);
  c.type = static_cast<weftDataType_t>(rng() % weftNumTypes);
  c.op = static_cast<weftRedOp_t>(rng() % weftNumOps);
  c.inPlace = (rng() & 1) != 0;
  // Sizes spread over every protocol: 0, small inline, slot-sized, by address, large.
  int log2 = static_cast<int>(rng() % 23);
  c.count = log2 == 0 ? 0 : (size_t{1} << (log2 - 1)) + rng() % (size_t{1} << (log2 - 1));
  c.root = static_cast<int>(rng() % static_cast<unsigned>(nranks));
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long long seed = 0;
  int calls = 300;
  bool seeded = false;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
      seed = strtoull(argv[++i], nullptr, 10);
      seeded = true;
    } else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc) {
      calls = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: %s --seed S [--calls N]\n", argv[0]);
      return 2;
    }
  }
  const char* rankText = getenv("WEFT_RANK");
  const char* nranksText = getenv("WEFT_NRANKS");
  if (!seeded || rankText == nullptr || nranksText == nullptr || getenv("WEFT_COMM_ID") == nullptr) {
    fprintf(stderr, "fault_rank: --seed, WEFT_RANK, WEFT_NRANKS and WEFT_COMM_ID are required\n");
    return 2;
  }
  int rank = atoi(rankText), nranks = atoi(nranksText);
  setvbuf(stdout, nullptr, _IOLBF, 0);

  weftUniqueId id;
  weftResult_t rc = weftGetUniqueId(&id);
  if (rc != weftSuccess) return reportError(-1, rc, weftGetLastError(nullptr));
  weftComm_t comm = nullptr;
  rc = weftCommInitRank(&comm, nranks, id, rank);
  if (rc != weftSuccess) return reportError(-1, rc, weftGetLastError(nullptr));

  std::mt19937_64 rng(seed);
  for (int call = 0; call < calls; ++call) {
    std::string error;
    if (rng() % 10 == 0) {
      // A group of sends and receives between every pair, checked element by element.
      error = weft::test::allToAll(comm, rank, nranks, 1 + rng() % 200000);
    } else {
      weft::test::Case c = drawCase(rng, nranks);
      error = weft::test::runCase(comm, rank, nranks, c);
    }
    if (error.empty()) continue;
    // The checks' own words for a result that came back as success but wrong.
    bool wrong = error.find("wrong value at element") != std::string::npos ||
                 error.find("wrong element") != std::string::npos ||
                 error.find("out of order or wrong") != std::string::npos;
    if (wrong) {
      printf("wrong call=%d: %s\n", call, error.c_str());
      return 4;
    }
    weftResult_t async = weftSuccess;
    weftCommGetAsyncError(comm, &async);
    int code = reportError(call, async == weftSuccess ? weftInternalError : async, weftGetLastError(comm));
    weftCommAbort(comm);
    return code;
  }
  rc = weftCommDestroy(comm);
  if (rc != weftSuccess) return reportError(calls, rc, "weftCommDestroy failed");
  printf("done calls=%d\n", calls);
  return 0;
}
