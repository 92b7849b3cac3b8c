// Runs a body on n ranks, as threads of this process or as forked processes,
// each with its own communicator. A body returns "" on success or a sentence
// saying what went wrong; the launcher returns one entry per failing rank.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "weft/weft.h"

namespace weft::test {

// Nodes: processes in pairs, each pair with its own WEFT_HOSTID, so ranks of
// different pairs connect through the net transport (over loopback).
// Nodes1: every process a node of its own. DeviceThreads: threads whose
// communicators are GPU communicators sharing device 0 (cudaDevice 0,
// allowSharedGpu 1): the emulated device under WEFT_DEVICE=emulated.
enum class RankMode { Threads, Processes, Nodes, Nodes1, DeviceThreads, DeviceProcesses, DeviceNodes };

inline const char* modeName(RankMode mode) {
  static const char* kNames[] = {"threads",        "processes",        "nodes",       "nodes1",
                                 "device_threads", "device_processes", "device_nodes"};
  return kNames[static_cast<int>(mode)];
}

using RankBody = std::function<std::string(weftComm_t comm, int rank, int nranks)>;

// Failures, as "rank r: message". timeoutSeconds bounds the whole run; ranks
// still running then are killed (processes) or reported (threads).
std::vector<std::string> runRanks(int nranks, RankMode mode, const RankBody& body, int timeoutSeconds = 240);

// Joins failures into one message for a test assertion.
std::string joinFailures(const std::vector<std::string>& failures);

}  // namespace weft::test
