// Every collective x type x op x in-place/out-of-place x count, on 1-5 ranks,
// as threads and as processes, compared bit for bit. One launch per
// configuration loops over all cases inside, which keeps the suite fast.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "exact_data.h"
#include "common/launcher.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

enum class Coll { AllReduce, ReduceScatter, AllGather, Broadcast, Reduce };
const char* collName(Coll c) {
  static const char* kNames[] = {"AllReduce", "ReduceScatter", "AllGather", "Broadcast", "Reduce"};
  return kNames[static_cast<int>(c)];
}
bool reduces(Coll c) { return c == Coll::AllReduce || c == Coll::ReduceScatter || c == Coll::Reduce; }

const size_t kCounts[] = {0, 1, 7, 1023, (1u << 20) + 3};

struct Case {
  Coll coll;
  weftDataType_t type;
  weftRedOp_t op;
  bool inPlace;
  size_t count;
  int root;
};

std::string describe(const Case& c) {
  char text[160];
  snprintf(text, sizeof(text), "%s type=%d op=%d %s count=%zu root=%d", collName(c.coll), c.type, c.op,
           c.inPlace ? "in-place" : "out-of-place", c.count, c.root);
  return text;
}

std::vector<Case> allCases(int nranks) {
  std::vector<Case> cases;
  int rootCycle = 0;
  for (Coll coll : {Coll::AllReduce, Coll::ReduceScatter, Coll::AllGather, Coll::Broadcast, Coll::Reduce})
    for (int type = 0; type < weftNumTypes; ++type)
      for (int op = 0; op < (reduces(coll) ? weftNumOps : 1); ++op)
        for (bool inPlace : {false, true})
          for (size_t count : kCounts)
            cases.push_back({coll, static_cast<weftDataType_t>(type), static_cast<weftRedOp_t>(op), inPlace, count,
                             (rootCycle++) % nranks});
  return cases;
}

// Runs one case on this rank; "" when the output is exactly right.
std::string runCase(weftComm_t comm, int rank, int n, const Case& c) {
  size_t tb = weftTypeSize(c.type);
  size_t count = c.count;
  size_t sendCount = c.coll == Coll::ReduceScatter ? count * n : count;
  size_t recvCount = c.coll == Coll::AllGather ? count * n : count;
  std::vector<char> sendStore(std::max<size_t>(sendCount, 1) * tb), recvStore(std::max<size_t>(recvCount, 1) * tb);
  char* send = sendStore.data();
  char* recv = recvStore.data();
  // Poison the output so stale data cannot pass.
  memset(recv, 0x5a, recvStore.size());
  std::vector<char> in = reduces(c.coll) ? inputPeriod(c.type, c.op, n, rank) : patternPeriod(c.type, rank);
  weftResult_t result = weftSuccess;
  switch (c.coll) {
    case Coll::AllReduce:
      if (c.inPlace) send = recv;
      fillFromPeriod(send, count, 0, in, tb);
      result = weftAllReduce(send, recv, count, c.type, c.op, comm, nullptr);
      break;
    case Coll::ReduceScatter:
      if (c.inPlace) {
        send = recv = recvStore.data();
        recvStore.assign(std::max<size_t>(sendCount, 1) * tb, 0);
        send = recvStore.data();
        recv = send + static_cast<size_t>(rank) * count * tb;
      }
      fillFromPeriod(send, sendCount, 0, in, tb);
      result = weftReduceScatter(send, recv, count, c.type, c.op, comm, nullptr);
      break;
    case Coll::AllGather:
      if (c.inPlace) send = recv + static_cast<size_t>(rank) * count * tb;
      fillFromPeriod(send, count, 0, in, tb);
      result = weftAllGather(send, recv, count, c.type, comm, nullptr);
      break;
    case Coll::Broadcast:
      if (c.inPlace) send = recv;
      if (rank == c.root) fillFromPeriod(send, count, 0, in, tb);
      result = weftBroadcast(send, recv, count, c.type, c.root, comm, nullptr);
      break;
    case Coll::Reduce:
      if (c.inPlace) send = recv;
      fillFromPeriod(send, count, 0, in, tb);
      result = weftReduce(send, recv, count, c.type, c.op, c.root, comm, nullptr);
      break;
  }
  if (result == weftSuccess) result = weftCommSynchronize(comm);
  if (result != weftSuccess) return describe(c) + ": " + weftGetErrorString(result) + ": " + weftGetLastError(comm);

  long long bad = -1;
  switch (c.coll) {
    case Coll::AllReduce:
      bad = firstMismatch(recv, count, 0, expectedPeriod(c.type, c.op, n), tb);
      break;
    case Coll::ReduceScatter:
      bad = firstMismatch(recv, count, static_cast<size_t>(rank) * count, expectedPeriod(c.type, c.op, n), tb);
      break;
    case Coll::AllGather:
      for (int j = 0; j < n && bad < 0; ++j) {
        bad = firstMismatch(recv + static_cast<size_t>(j) * count * tb, count, 0, patternPeriod(c.type, j), tb);
        if (bad >= 0) bad += static_cast<long long>(j * count);
      }
      break;
    case Coll::Broadcast:
      bad = firstMismatch(recv, count, 0, patternPeriod(c.type, c.root), tb);
      break;
    case Coll::Reduce:
      if (rank == c.root) bad = firstMismatch(recv, count, 0, expectedPeriod(c.type, c.op, n), tb);
      break;
  }
  if (bad >= 0) return describe(c) + ": wrong value at element " + std::to_string(bad);
  return "";
}

struct Config {
  int nranks;
  RankMode mode;
  const char* algo;      // WEFT_ALGO, "" for the tuner's choice
  const char* channels;  // WEFT_NCHANNELS
  const char* buffsize;  // WEFT_BUFFSIZE
};

class CollectivesTest : public ::testing::TestWithParam<Config> {};

TEST_P(CollectivesTest, EveryCollectiveTypeOpAndCountIsExact) {
  const Config& config = GetParam();
  setenv("WEFT_ALGO", config.algo, 1);
  setenv("WEFT_NCHANNELS", config.channels, 1);
  setenv("WEFT_BUFFSIZE", config.buffsize, 1);
  std::vector<Case> cases = allCases(config.nranks);
  auto failures = runRanks(config.nranks, config.mode, [&](weftComm_t comm, int rank, int n) -> std::string {
    std::string errors;
    int failed = 0;
    for (const Case& c : cases) {
      std::string error = runCase(comm, rank, n, c);
      if (!error.empty()) {
        errors += error + "; ";
        if (++failed >= 5) break;
        weftResult_t async = weftSuccess;
        weftCommGetAsyncError(comm, &async);
        if (async != weftSuccess) break;  // the communicator is gone; stop here
      }
    }
    return errors;
  });
  unsetenv("WEFT_ALGO");
  unsetenv("WEFT_NCHANNELS");
  unsetenv("WEFT_BUFFSIZE");
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

std::string configName(const ::testing::TestParamInfo<Config>& info) {
  const Config& c = info.param;
  std::string name = std::to_string(c.nranks) + "ranks_" + modeName(c.mode);
  if (c.algo[0]) name += std::string("_") + c.algo;
  if (std::string(c.channels) != "0") name += std::string("_ch") + c.channels;
  if (std::string(c.buffsize) != "131072") name += std::string("_slot") + c.buffsize;
  return name;
}

INSTANTIATE_TEST_SUITE_P(
    Ranks, CollectivesTest,
    ::testing::Values(Config{1, RankMode::Threads, "", "0", "131072"}, Config{2, RankMode::Threads, "", "0", "131072"},
                      Config{3, RankMode::Threads, "", "0", "131072"}, Config{4, RankMode::Threads, "", "0", "131072"},
                      Config{5, RankMode::Threads, "", "0", "131072"},
                      Config{1, RankMode::Processes, "", "0", "131072"},
                      Config{2, RankMode::Processes, "", "0", "131072"},
                      Config{3, RankMode::Processes, "", "0", "131072"},
                      Config{4, RankMode::Processes, "", "0", "131072"},
                      Config{5, RankMode::Processes, "", "0", "131072"},
                      // Ring even for tiny counts (blocks shorter than the rank count, empty blocks).
                      Config{3, RankMode::Threads, "ring", "2", "4096"},
                      Config{5, RankMode::Processes, "ring", "0", "131072"},
                      // One-shot even for large counts (many pipelined iterations).
                      Config{3, RankMode::Threads, "oneshot", "0", "4096"},
                      // Two-shot for every size (empty blocks, scratch partial sums, by-address sends).
                      Config{4, RankMode::Processes, "twoshot", "0", "131072"},
                      Config{3, RankMode::Threads, "twoshot", "2", "4096"}),
    configName);

}  // namespace
}  // namespace weft::test
