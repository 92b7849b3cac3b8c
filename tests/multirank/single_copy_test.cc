// Single-copy paths between processes of one node: cross-memory attach
// (WEFT_CMA) for the messages of copy collectives, and registered buffers
// (weftMemAllocHost + weftCommRegister), which peers map and read directly
// in every collective. Every collective case runs exactly on each path, with
// small slots so that a message spans many; a trace shows the path was taken.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <chrono>
#include <thread>
#include <string>
#include <vector>

#include "common/collective_cases.h"
#include "common/launcher.h"
#include "common/p2p_cases.h"
#include "weft/weft.h"

namespace weft::test {
namespace {

// Sets environment variables for one test, restoring them after.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::map<std::string, std::string> values) {
    for (auto& [name, value] : values) {
      const char* old = getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    for (auto& [name, old] : saved_)
      if (old)
        setenv(name.c_str(), old->c_str(), 1);
      else
        unsetenv(name.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// The case buffers of a process rank: weftMemAllocHost memory, registered
// with the rank's communicator (one per process in these tests).
weftComm_t registeringComm = nullptr;
std::map<void*, void*> registrations;  // buffer -> handle

void* allocateRegistered(size_t bytes) {
  void* p = nullptr;
  if (weftMemAllocHost(&p, bytes) != weftSuccess) return nullptr;
  void* handle = nullptr;
  if (weftCommRegister(registeringComm, p, bytes, &handle) != weftSuccess) {
    weftMemFree(p);
    return nullptr;
  }
  registrations[p] = handle;
  return p;
}
void releaseRegistered(void* p) {
  weftCommDeregister(registeringComm, registrations[p]);
  registrations.erase(p);
  weftMemFree(p);
}
const BufferSpace kRegistered = {allocateRegistered, releaseRegistered};

std::vector<size_t> counts() { return caseCounts(65539); }

std::string fileText(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Counts the steps of a trace that went by address.
int byAddressSteps(const std::string& s) {
  int n = 0;
  for (size_t at = s.find("\"byAddress\": true"); at != std::string::npos; at = s.find("\"byAddress\": true", at + 1))
    ++n;
  return n;
}

std::string tracePath(const char* what) {
  return "/tmp/weft-single-copy-" + std::string(what) + "-" + std::to_string(getpid()) + ".%r";
}
std::string rankTrace(std::string path, int rank) { return path.replace(path.find("%r"), 2, std::to_string(rank)); }

// A host call is enqueued and may still be running when it returns (weft.h):
// its output is read, and its buffers deregistered and freed, only once the
// communicator's queue has drained.
weftResult_t completed(weftResult_t posted, weftComm_t comm) {
  return posted == weftSuccess ? weftCommSynchronize(comm) : posted;
}

// Slices of one slot, and (every rank a process, every message by
// address) slices of three slots, awkward for every count.
TEST(SingleCopy, CrossMemoryAttachCopiesEveryCollectiveExactly) {
  for (const char* slice : {"4096", "12288"}) {
    ScopedEnv env(
        {{"WEFT_CMA", "1"}, {"WEFT_CMA_THRESHOLD", "0"}, {"WEFT_BUFFSIZE", "4096"}, {"WEFT_CMA_SLICE", slice}});
    std::vector<std::string> failures = runRanks(3, RankMode::Processes, [](weftComm_t comm, int rank, int n) {
      std::string wrong = runCases(comm, rank, n, allCases(n, counts()));
      if (wrong.empty()) wrong = ringExchange(comm, rank, n);
      if (wrong.empty()) wrong = allToAll(comm, rank, n, 70001);
      return wrong;
    });
    EXPECT_TRUE(failures.empty()) << "WEFT_CMA_SLICE=" << slice << ": " << joinFailures(failures);
  }
}

TEST(SingleCopy, AnUnusableSliceSizeFailsInitNamingIt) {
  ScopedEnv env(std::map<std::string, std::string>{{"WEFT_CMA_SLICE", "1000"}});
  std::vector<std::string> failures =
      runRanks(2, RankMode::Processes, [](weftComm_t, int, int) { return std::string(); });
  ASSERT_EQ(failures.size(), 2u);
  for (const std::string& failure : failures)
    EXPECT_NE(failure.find("WEFT_CMA_SLICE=1000"), std::string::npos) << failure;
}

TEST(SingleCopy, RegisteredBuffersAreReadInPlaceByEveryCollective) {
  // Cross-memory attach off: what goes by address between these processes
  // goes through the mapped registrations only.
  ScopedEnv env({{"WEFT_CMA", "0"}, {"WEFT_ZERO_COPY_THRESHOLD", "0"}, {"WEFT_BUFFSIZE", "4096"}});
  std::vector<std::string> failures = runRanks(3, RankMode::Processes, [](weftComm_t comm, int rank, int n) {
    registeringComm = comm;
    setBufferSpace(&kRegistered);
    std::string wrong = runCases(comm, rank, n, allCases(n, counts()));
    setBufferSpace(nullptr);
    if (wrong.empty() && !registrations.empty()) wrong = "buffers are still registered";
    return wrong;
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// One all-gather and one all-reduce of 256 KiB per rank, traced: the path
// each test is about carries them.
std::string tracedCalls(weftComm_t comm, int rank, int n, bool registered) {
  size_t count = 65536;
  void *send = nullptr, *recv = nullptr, *handles[2] = {nullptr, nullptr};
  if (registered) {
    if (weftMemAllocHost(&send, count * 4) != weftSuccess || weftMemAllocHost(&recv, count * 4 * n) != weftSuccess)
      return std::string("weftMemAllocHost: ") + weftGetLastError(nullptr);
    if (weftCommRegister(comm, send, count * 4, &handles[0]) != weftSuccess ||
        weftCommRegister(comm, recv, count * 4 * n, &handles[1]) != weftSuccess)
      return std::string("weftCommRegister: ") + weftGetLastError(comm);
  } else {
    send = malloc(count * 4);
    recv = malloc(count * 4 * n);
  }
  auto* in = static_cast<float*>(send);
  auto* out = static_cast<float*>(recv);
  for (size_t i = 0; i < count; ++i) in[i] = static_cast<float>(rank * 1000 + static_cast<int>(i % 997));
  std::string wrong;
  if (completed(weftAllGather(send, recv, count, weftFloat32, comm, nullptr), comm) != weftSuccess)
    wrong = std::string("all-gather: ") + weftGetLastError(comm);
  for (int r = 0; r < n && wrong.empty(); ++r)
    for (size_t i = 0; i < count; ++i)
      if (out[r * count + i] != static_cast<float>(r * 1000 + static_cast<int>(i % 997))) {
        wrong = "all-gather: element " + std::to_string(i) + " of rank " + std::to_string(r) + " is wrong";
        break;
      }
  if (wrong.empty() &&
      completed(weftAllReduce(send, recv, count, weftFloat32, weftSum, comm, nullptr), comm) != weftSuccess)
    wrong = std::string("all-reduce: ") + weftGetLastError(comm);
  for (size_t i = 0; i < count && wrong.empty(); ++i) {
    float expected = 0;
    for (int r = 0; r < n; ++r) expected += static_cast<float>(r * 1000 + static_cast<int>(i % 997));
    if (out[i] != expected) wrong = "all-reduce: element " + std::to_string(i) + " is wrong";
  }
  // A broadcast of 384 KiB in place (rooted: its plans pass tokens too).
  size_t broadcastCount = 3 * count / 2;
  for (size_t i = 0; i < broadcastCount && wrong.empty(); ++i) out[i] = rank == 0 ? static_cast<float>(i % 991) : -1.0f;
  if (wrong.empty() &&
      completed(weftBroadcast(recv, recv, broadcastCount, weftFloat32, 0, comm, nullptr), comm) != weftSuccess)
    wrong = std::string("broadcast: ") + weftGetLastError(comm);
  for (size_t i = 0; i < broadcastCount && wrong.empty(); ++i)
    if (out[i] != static_cast<float>(i % 991)) wrong = "broadcast: element " + std::to_string(i) + " is wrong";
  // All-to-all out of place (blocks of 1001 floats: 4004 bytes a send) and
  // in place (1003: 4012 bytes); block j of rank r holds r * 100 + j.
  for (bool inPlace : {false, true}) {
    size_t block = inPlace ? 1003 : 1001;
    float* source = inPlace ? out : in;
    for (int j = 0; j < n && wrong.empty(); ++j)
      for (size_t i = 0; i < block; ++i) source[j * block + i] = static_cast<float>(rank * 100 + j);
    if (wrong.empty() && completed(weftAllToAll(source, out, block, weftFloat32, comm, nullptr), comm) != weftSuccess)
      wrong = std::string("all-to-all: ") + weftGetLastError(comm);
    for (int j = 0; j < n && wrong.empty(); ++j)
      for (size_t i = 0; i < block; ++i)
        if (out[j * block + i] != static_cast<float>(j * 100 + rank)) {
          wrong = std::string("all-to-all ") + (inPlace ? "in place" : "out of place") + ": block " +
                  std::to_string(j) + " is wrong";
          break;
        }
  }
  if (registered) {
    for (void* h : handles) weftCommDeregister(comm, h);
    weftMemFree(send);
    weftMemFree(recv);
  } else {
    free(send);
    free(recv);
  }
  return wrong;
}

TEST(SingleCopy, TracesShowWhichPathCarriedTheMessages) {
  for (bool registered : {false, true}) {
    std::string path = tracePath(registered ? "registered" : "cma");
    {
      ScopedEnv env({{"WEFT_CMA", registered ? "0" : "1"},
                     {"WEFT_CMA_THRESHOLD", "0"},
                     {"WEFT_ZERO_COPY_THRESHOLD", "0"},
                     {"WEFT_ALGO", "ring"},
                     {"WEFT_TRACE_FILE", path}});
      std::vector<std::string> failures =
          runRanks(2, RankMode::Processes,
                   [registered](weftComm_t comm, int rank, int n) { return tracedCalls(comm, rank, n, registered); });
      ASSERT_TRUE(failures.empty()) << joinFailures(failures);
    }
    for (int rank = 0; rank < 2; ++rank) {
      std::string file = rankTrace(path, rank);
      // The all-gather's sends go by address either way; the all-reduce's
      // only from registered buffers (cross-memory attach copies only).
      std::string s = fileText(file);
      EXPECT_GT(byAddressSteps(s), 0) << file;
      // Each event names its step; a reducing step by address appears only
      // with registered buffers.
      bool reducedByAddress = false;
      for (size_t at = s.find("recvReduce"); at != std::string::npos; at = s.find("recvReduce", at + 1)) {
        size_t end = s.find('}', at);
        if (s.substr(at, end - at).find("\"byAddress\": true") != std::string::npos) reducedByAddress = true;
      }
      EXPECT_EQ(reducedByAddress, registered) << file;
      // Every rank a process and every message by cross-memory attach: the
      // all-gather's 256 KiB blocks move in one step each, not in 128 KiB
      // slots (WEFT_CMA_SLICE).
      bool wholeBlock = s.find("\"bytes\": 262144") != std::string::npos;
      EXPECT_EQ(wholeBlock, !registered) << file;
      // So does the broadcast's 384 KiB, though its plans pass tokens
      // through the slots.
      bool wholeBroadcast = s.find("\"bytes\": 393216") != std::string::npos;
      EXPECT_EQ(wholeBroadcast, !registered) << file;
      // All-to-all's blocks go by address out of place only (in place a
      // block is overwritten while its peer may still read it).
      int outOfPlace = 0, inPlace = 0;
      std::istringstream lines(s);
      for (std::string line; std::getline(lines, line);) {
        if (line.find("\"name\": \"send\"") == std::string::npos) continue;
        bool byAddress = line.find("\"byAddress\": true") != std::string::npos;
        if (line.find("\"bytes\": 4004,") != std::string::npos) outOfPlace += byAddress ? 1 : -1000;
        if (line.find("\"bytes\": 4012,") != std::string::npos) inPlace += byAddress ? -1000 : 1;
      }
      EXPECT_EQ(outOfPlace, 1) << file << ": one send to the one peer, by address";
      EXPECT_EQ(inPlace, 1) << file << ": one send to the one peer, through the slot";
      unlink(file.c_str());
    }
  }
}

// Mappings of weftMemAllocHost memory in this process (its own and its
// peers' that it mapped).
int sharedHostMappings() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  int n = 0;
  while (std::getline(maps, line)) n += line.find("weft-host-memory") != std::string::npos ? 1 : 0;
  return n;
}

// A peer's buffers that it deregistered and freed are not kept mapped here:
// round after round of fresh registered buffers leaves at most the last
// round's mappings behind.
TEST(SingleCopy, FreedRegistrationsOfAPeerAreUnmapped) {
  ScopedEnv env({{"WEFT_CMA", "0"}, {"WEFT_ZERO_COPY_THRESHOLD", "0"}});
  std::vector<std::string> failures = runRanks(2, RankMode::Processes, [](weftComm_t comm, int rank, int n) {
    size_t count = 1 << 16;
    for (int round = 0; round < 6; ++round) {
      void *send = nullptr, *recv = nullptr, *handles[2] = {nullptr, nullptr};
      if (weftMemAllocHost(&send, count * 4) != weftSuccess || weftMemAllocHost(&recv, count * 4) != weftSuccess ||
          weftCommRegister(comm, send, count * 4, &handles[0]) != weftSuccess ||
          weftCommRegister(comm, recv, count * 4, &handles[1]) != weftSuccess)
        return std::string("allocation or registration failed: ") + weftGetLastError(comm);
      for (size_t i = 0; i < count; ++i) static_cast<int32_t*>(send)[i] = rank + round + static_cast<int32_t>(i);
      if (completed(weftAllReduce(send, recv, count, weftInt32, weftSum, comm, nullptr), comm) != weftSuccess)
        return std::string("all-reduce: ") + weftGetLastError(comm);
      for (size_t i = 0; i < count; ++i)
        if (static_cast<int32_t*>(recv)[i] != 1 + 2 * (round + static_cast<int32_t>(i)))
          return "round " + std::to_string(round) + ": element " + std::to_string(i) + " is wrong";
      for (void* h : handles) weftCommDeregister(comm, h);
      weftMemFree(send);
      weftMemFree(recv);
      // Both ranks done with this round before either frees the next.
      int one = 1, sum = 0;
      if (completed(weftAllReduce(&one, &sum, 1, weftInt32, weftSum, comm, nullptr), comm) != weftSuccess || sum != n)
        return std::string("barrier: ") + weftGetLastError(comm);
    }
    int left = sharedHostMappings();
    if (left > 2) return "rank " + std::to_string(rank) + " still maps " + std::to_string(left) + " shared buffers";
    return std::string();
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

// A rank that withdraws a registration while a call it posted still lends
// that buffer (host calls run asynchronously): its peer finds the address in
// no registration and says so, and both calls fail, where the peer used to
// read the address some other way or report a bad address.
TEST(SingleCopy, ABufferDeregisteredWhileLentIsNamed) {
  ScopedEnv env({{"WEFT_CMA", "0"}, {"WEFT_ZERO_COPY_THRESHOLD", "0"}});
  std::vector<std::string> failures = runRanks(2, RankMode::Processes, [](weftComm_t comm, int rank, int) {
    size_t count = 1 << 16;
    void *send = nullptr, *recv = nullptr, *handles[2] = {nullptr, nullptr};
    if (weftMemAllocHost(&send, count * 4) != weftSuccess || weftMemAllocHost(&recv, count * 4) != weftSuccess ||
        weftCommRegister(comm, send, count * 4, &handles[0]) != weftSuccess ||
        weftCommRegister(comm, recv, count * 4, &handles[1]) != weftSuccess)
      return std::string("allocation or registration failed: ") + weftGetLastError(comm);
    for (size_t i = 0; i < count; ++i) static_cast<int32_t*>(send)[i] = static_cast<int32_t>(i);
    // Rank 0 posts first and lends its input at once; rank 1 comes later.
    if (rank == 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    weftResult_t posted = weftAllReduce(send, recv, count, weftInt32, weftSum, comm, nullptr);
    if (rank == 0)
      for (void* h : handles) weftCommDeregister(comm, h);
    weftResult_t result = posted == weftSuccess ? weftCommSynchronize(comm) : posted;
    std::string error = weftGetLastError(comm);
    if (rank == 1)
      for (void* h : handles) weftCommDeregister(comm, h);
    weftMemFree(send);
    weftMemFree(recv);
    if (result == weftSuccess) return std::string("the call succeeded");
    if (error.find("rank 0 lent a buffer at 0x") == std::string::npos ||
        error.find("that it no longer registers") == std::string::npos)
      return "the error does not name the withdrawn buffer: " + error;
    return std::string();
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

TEST(SingleCopy, RegistrationRejectsBadArgumentsAndKeepsTheCommunicatorUsable) {
  std::vector<std::string> failures = runRanks(2, RankMode::Processes, [](weftComm_t comm, int, int) -> std::string {
    void* handle = reinterpret_cast<void*>(1);
    char buffer[64];
    if (weftCommRegister(comm, nullptr, 64, &handle) != weftInvalidArgument) return "NULL buffer accepted";
    if (handle != nullptr) return "a failed registration left a handle";
    if (weftCommRegister(comm, buffer, 0, &handle) != weftInvalidArgument) return "size 0 accepted";
    if (weftCommRegister(comm, buffer, 64, nullptr) != weftInvalidArgument) return "NULL handle accepted";
    if (weftCommRegister(nullptr, buffer, 64, &handle) != weftInvalidArgument) return "NULL communicator accepted";
    if (weftCommDeregister(comm, buffer) != weftInvalidArgument) return "an unknown handle was deregistered";
    std::string error = weftGetLastError(comm);
    if (error.find("not a registration") == std::string::npos) return "unclear error: " + error;
    // Ordinary memory registers (peers copy it), and deregisters once.
    if (weftCommRegister(comm, buffer, sizeof(buffer), &handle) != weftSuccess) return weftGetLastError(comm);
    if (weftCommDeregister(comm, handle) != weftSuccess) return weftGetLastError(comm);
    if (weftCommDeregister(comm, handle) != weftInvalidArgument) return "deregistered twice";
    void* p = nullptr;
    if (weftMemAllocHost(&p, 0) != weftInvalidArgument) return "weftMemAllocHost of 0 bytes accepted";
    if (weftMemAllocHost(nullptr, 64) != weftInvalidArgument) return "weftMemAllocHost with NULL ptr accepted";
    // Still usable.
    int value = 1, sum = 0;
    if (completed(weftAllReduce(&value, &sum, 1, weftInt32, weftSum, comm, nullptr), comm) != weftSuccess)
      return weftGetLastError(comm);
    if (sum != 2) return "all-reduce after the errors gave " + std::to_string(sum);
    return "";
  });
  EXPECT_TRUE(failures.empty()) << joinFailures(failures);
}

}  // namespace
}  // namespace weft::test
