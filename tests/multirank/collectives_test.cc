// Every collective x type x op x in-place/out-of-place x count, on 1-5 ranks,
// as threads and as processes, compared bit for bit. One launch per
// configuration loops over all cases inside, which keeps the suite fast.
#include <gtest/gtest.h>

#include <cctype>
#include <deque>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/collective_cases.h"
#include "algorithms/registry.h"
#include "common/launcher.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

struct Config {
  int nranks;
  RankMode mode;
  const char* algo;                // WEFT_ALGO, "" for the tuner's choice
  const char* channels;            // WEFT_NCHANNELS
  const char* buffsize;            // WEFT_BUFFSIZE
  size_t largest = kLargestCount;  // the largest count of a case
};

class CollectivesTest : public ::testing::TestWithParam<Config> {};

// Runs the cases on the configuration's ranks under its WEFT_ALGO,
// WEFT_NCHANNELS and WEFT_BUFFSIZE; every rank's failures.
std::vector<std::string> runConfigured(const Config& config, const std::vector<Case>& cases) {
  setenv("WEFT_ALGO", config.algo, 1);
  setenv("WEFT_NCHANNELS", config.channels, 1);
  setenv("WEFT_BUFFSIZE", config.buffsize, 1);
  auto failures = runRanks(config.nranks, config.mode, [&](weftComm_t comm, int rank, int n) -> std::string {
    return runCases(comm, rank, n, cases);
  });
  unsetenv("WEFT_ALGO");
  unsetenv("WEFT_NCHANNELS");
  unsetenv("WEFT_BUFFSIZE");
  return failures;
}

TEST_P(CollectivesTest, EveryCollectiveTypeOpAndCountIsExact) {
  const Config& config = GetParam();
  auto failures = runConfigured(config, allCases(config.nranks, caseCounts(config.largest)));
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// 16 ranks make the tree 4 deep, so its plans cut each slot in two
// (Plan::slicesPerSlot): all-reduce, broadcast and reduce through it, many
// slices a call (4 KiB slots, two channels), the types and ops whose exact
// inputs stay exact over 16 ranks.
TEST(CollectivesDeepTree, SixteenThreadRanksRunTheTreeInHalfSlotSlices) {
  std::vector<Case> cases;
  for (const Case& c : allCases(16, {1023, 20011})) {
    // The exact inputs are sized for a handful of ranks: summed over 16,
    // 8-bit integers and the fp8 formats overflow or round on the way (the
    // ring fails alike), and so may products. The wider types stay exact.
    bool wide = c.type == weftInt32 || c.type == weftInt64 || c.type == weftFloat16 || c.type == weftFloat32 ||
                c.type == weftFloat64 || c.type == weftBfloat16;
    if ((c.coll == Coll::AllReduce || c.coll == Coll::Broadcast || c.coll == Coll::Reduce) &&
        (c.coll == Coll::Broadcast || (wide && c.op != weftProd)))
      cases.push_back(c);
  }
  auto failures = runConfigured(Config{16, RankMode::Threads, "tree", "2", "4096"}, cases);
  EXPECT_GT(cases.size(), 50u);
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

// The tuner's choices on 1-5 ranks, threads and processes, across nodes;
// then every algorithm of the registry forced (WEFT_ALGO) for every size,
// as threads (two channels, small slots: many pipelined iterations, empty
// blocks) and as processes (its name upper-cased: WEFT_ALGO ignores case).
std::vector<Config> configs() {
  std::vector<Config> list = {
      Config{1, RankMode::Threads, "", "0", "131072"}, Config{2, RankMode::Threads, "", "0", "131072"},
      Config{3, RankMode::Threads, "", "0", "131072"}, Config{4, RankMode::Threads, "", "0", "131072"},
      Config{5, RankMode::Threads, "", "0", "131072"}, Config{1, RankMode::Processes, "", "0", "131072"},
      Config{2, RankMode::Processes, "", "0", "131072"}, Config{3, RankMode::Processes, "", "0", "131072"},
      Config{4, RankMode::Processes, "", "0", "131072"}, Config{5, RankMode::Processes, "", "0", "131072"},
      // Ring on 5 processes (blocks shorter than the rank count, empty blocks).
      Config{5, RankMode::Processes, "ring", "0", "131072"},
      // Across nodes (the net transport over loopback): 2 nodes x 2 ranks,
      // 3 nodes x 1 rank, and 5 ranks on nodes of 2, 2 and 1.
      Config{4, RankMode::Nodes, "", "0", "131072"}, Config{3, RankMode::Nodes1, "", "0", "131072"},
      // Its 4 KiB slots cross TCP: 64 Ki elements already make dozens of
      // slices a call, and a million would take minutes on two cores.
      Config{5, RankMode::Nodes, "ring", "2", "4096", 65539},
      // Hierarchical on 2 nodes x 2 ranks: its three phases (one node, and
      // nodes of unequal size, take the flat ring; the verifier proves both).
      Config{4, RankMode::Nodes, "hierarchical", "0", "131072"},
      // ... and on 3 nodes x 2 ranks (a rail's middle), two channels.
      Config{6, RankMode::Nodes, "hierarchical", "2", "131072"}};
  static std::deque<std::string> upper;  // the Configs point into it (a deque never moves them)
  for (const AlgorithmEntry& entry : algorithmRegistry()) {
    list.push_back(Config{3, RankMode::Threads, entry.name, "2", "4096"});
    std::string name = entry.name;
    for (char& c : name) c = static_cast<char>(toupper(c));
    upper.push_back(name);
    list.push_back(Config{4, RankMode::Processes, upper.back().c_str(), "0", "131072"});
  }
  return list;
}

INSTANTIATE_TEST_SUITE_P(Ranks, CollectivesTest, ::testing::ValuesIn(configs()), configName);

}  // namespace
}  // namespace weft::test
