// One rank of a multi-node test, started by scripts/netns.sh inside a
// network namespace (WEFT_RANK, WEFT_NRANKS, WEFT_COMM_ID from the
// environment).
//
//   multinode_rank                 every collective x type x op x in/out of
//                                  place x count, then send/recv patterns;
//                                  exit 0 when every result is exact
//   multinode_rank --die-rank R    rank R kills itself in the middle of a
//                                  large all-reduce; every other rank must
//                                  get weftRemoteError or weftTimeout within
//                                  WEFT_TIMEOUT, naming a peer and its address
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/collective_cases.h"
#include "common/p2p_cases.h"
#include "weft/weft.h"

namespace {

int dieTest(weftComm_t comm, int rank, int dieRank) {
  const size_t count = 16u << 20;  // 64 MiB of float: long enough to be killed inside
  std::vector<float> data(count, 1.0f);
  if (rank == dieRank) {
    std::thread([] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      kill(getpid(), SIGKILL);
    }).detach();
  }
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1000; ++i) {
    weftResult_t rc = weftAllReduce(data.data(), data.data(), count, weftFloat32, weftSum, comm, nullptr);
    if (rc == weftSuccess) rc = weftCommSynchronize(comm);
    if (rc != weftSuccess) {
      double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const char* message = weftGetLastError(comm);
      printf("rank %d: all-reduce %d failed after %.2f s with %s: %s\n", rank, i, seconds, weftGetErrorString(rc),
             message);
      bool namesPeer = strstr(message, "rank ") != nullptr;
      if ((rc == weftRemoteError || rc == weftTimeout) && namesPeer) {
        weftCommAbort(comm);
        return 0;
      }
      printf("rank %d: expected weftRemoteError or weftTimeout naming the peer\n", rank);
      weftCommAbort(comm);
      return 1;
    }
  }
  printf("rank %d: every all-reduce succeeded although rank %d was killed\n", rank, dieRank);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int dieRank = -1;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--die-rank") == 0 && i + 1 < argc)
      dieRank = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: %s [--die-rank R]\n", argv[0]);
      return 2;
    }
  }
  const char* rankText = getenv("WEFT_RANK");
  const char* nranksText = getenv("WEFT_NRANKS");
  if (rankText == nullptr || nranksText == nullptr || getenv("WEFT_COMM_ID") == nullptr) {
    fprintf(stderr, "set WEFT_RANK, WEFT_NRANKS and WEFT_COMM_ID (scripts/netns.sh run does)\n");
    return 2;
  }
  int rank = atoi(rankText), nranks = atoi(nranksText);
  weftUniqueId id;
  if (weftGetUniqueId(&id) != weftSuccess) {
    fprintf(stderr, "rank %d: weftGetUniqueId: %s\n", rank, weftGetLastError(nullptr));
    return 1;
  }
  weftComm_t comm = nullptr;
  if (weftCommInitRank(&comm, nranks, id, rank) != weftSuccess) {
    fprintf(stderr, "rank %d: weftCommInitRank: %s\n", rank, weftGetLastError(nullptr));
    return 1;
  }
  if (dieRank >= 0) return dieTest(comm, rank, dieRank);

  std::vector<weft::test::Case> cases = weft::test::allCases(nranks, {0, 1, 7, 1023, 300007});
  std::string errors = weft::test::runCases(comm, rank, nranks, cases);
  if (errors.empty()) errors = weft::test::ringExchange(comm, rank, nranks);
  if (errors.empty()) errors = weft::test::allToAll(comm, rank, nranks, 70001);
  if (errors.empty()) errors = weft::test::orderedMessages(comm, rank, nranks);
  weftResult_t destroyed = weftCommDestroy(comm);
  if (!errors.empty()) {
    printf("rank %d: FAILED: %s\n", rank, errors.c_str());
    return 1;
  }
  if (destroyed != weftSuccess) {
    printf("rank %d: weftCommDestroy failed\n", rank);
    return 1;
  }
  printf("rank %d of %d: %zu collective cases and the send/recv patterns exact\n", rank, nranks, cases.size());
  return 0;
}
