// Runs a body on n ranks, as threads of this process or as forked processes,
// each with its own communicator. A body returns "" on success or a sentence
// saying what went wrong; the launcher returns one entry per failing rank.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "weft/weft.h"

namespace weft::test {

enum class RankMode { Threads, Processes };

inline const char* modeName(RankMode mode) { return mode == RankMode::Threads ? "threads" : "processes"; }

using RankBody = std::function<std::string(weftComm_t comm, int rank, int nranks)>;

// Failures, as "rank r: message". timeoutSeconds bounds the whole run; ranks
// still running then are killed (processes) or reported (threads).
std::vector<std::string> runRanks(int nranks, RankMode mode, const RankBody& body, int timeoutSeconds = 240);

// Joins failures into one message for a test assertion.
std::string joinFailures(const std::vector<std::string>& failures);

}  // namespace weft::test
