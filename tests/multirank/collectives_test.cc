// Every collective x type x op x in-place/out-of-place x count, on 1-5 ranks,
// as threads and as processes, compared bit for bit. One launch per
// configuration loops over all cases inside, which keeps the suite fast.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/collective_cases.h"
#include "common/launcher.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

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
    return runCases(comm, rank, n, cases);
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
    ::testing::Values(
        Config{1, RankMode::Threads, "", "0", "131072"}, Config{2, RankMode::Threads, "", "0", "131072"},
        Config{3, RankMode::Threads, "", "0", "131072"}, Config{4, RankMode::Threads, "", "0", "131072"},
        Config{5, RankMode::Threads, "", "0", "131072"}, Config{1, RankMode::Processes, "", "0", "131072"},
        Config{2, RankMode::Processes, "", "0", "131072"}, Config{3, RankMode::Processes, "", "0", "131072"},
        Config{4, RankMode::Processes, "", "0", "131072"}, Config{5, RankMode::Processes, "", "0", "131072"},
        // Ring even for tiny counts (blocks shorter than the rank count, empty blocks).
        Config{3, RankMode::Threads, "ring", "2", "4096"}, Config{5, RankMode::Processes, "ring", "0", "131072"},
        // One-shot even for large counts (many pipelined iterations).
        Config{3, RankMode::Threads, "oneshot", "0", "4096"},
        // Across nodes (the net transport over loopback): 2 nodes x 2 ranks,
        // 3 nodes x 1 rank, and 5 ranks on nodes of 2, 2 and 1.
        Config{4, RankMode::Nodes, "", "0", "131072"}, Config{3, RankMode::Nodes1, "", "0", "131072"},
        Config{5, RankMode::Nodes, "ring", "2", "4096"},
        // Two-shot for every size (empty blocks, scratch partial sums, by-address sends).
        Config{4, RankMode::Processes, "twoshot", "0", "131072"}, Config{3, RankMode::Threads, "twoshot", "2", "4096"}),
    configName);

}  // namespace
}  // namespace weft::test
