#include "launcher.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <thread>

namespace weft::test {
namespace {

std::string runOne(const weftUniqueId& id, int rank, int nranks, const RankBody& body, bool device = false) {
  weftComm_t comm = nullptr;
  weftResult_t result;
  if (device) {
    weftConfig_t config = WEFT_CONFIG_INITIALIZER;
    config.cudaDevice = 0;
    config.allowSharedGpu = 1;
    result = weftCommInitRankConfig(&comm, nranks, id, rank, &config);
  } else {
    result = weftCommInitRank(&comm, nranks, id, rank);
  }
  if (result != weftSuccess)
    return std::string("weftCommInitRank failed: ") + weftGetErrorString(result) + ": " + weftGetLastError(nullptr);
  std::string error;
  try {
    error = body(comm, rank, nranks);
  } catch (const std::exception& e) {
    error = std::string("exception: ") + e.what();
  }
  result = weftCommDestroy(comm);
  if (result != weftSuccess && error.empty()) error = "weftCommDestroy failed";
  return error;
}

bool writeAll(int fd, const void* data, size_t bytes) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = write(fd, p, bytes);
    if (n <= 0) return false;
    p += n;
    bytes -= static_cast<size_t>(n);
  }
  return true;
}

std::vector<std::string> runProcesses(int nranks, const RankBody& body, int timeoutSeconds, int ranksPerNode,
                                      bool device = false) {
  std::vector<std::string> failures;
  std::vector<pid_t> pids(static_cast<size_t>(nranks));
  std::vector<int> idWrite(static_cast<size_t>(nranks)), resultRead(static_cast<size_t>(nranks));
  // Fork first, while this process has no weft threads; the id follows
  // through a pipe.
  for (int r = 0; r < nranks; ++r) {
    int idPipe[2], resultPipe[2];
    if (pipe(idPipe) != 0 || pipe(resultPipe) != 0) {
      failures.push_back("pipe() failed");
      return failures;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(idPipe[1]);
      close(resultPipe[0]);
      if (ranksPerNode > 0) setenv("WEFT_HOSTID", ("weft-test-node-" + std::to_string(r / ranksPerNode)).c_str(), 1);
      weftUniqueId id;
      size_t got = 0;
      while (got < sizeof(id)) {
        ssize_t n = read(idPipe[0], reinterpret_cast<char*>(&id) + got, sizeof(id) - got);
        if (n <= 0) _exit(3);
        got += static_cast<size_t>(n);
      }
      std::string error = runOne(id, r, nranks, body, device);
      writeAll(resultPipe[1], error.data(), error.size());
      close(resultPipe[1]);
      _exit(error.empty() ? 0 : 1);
    }
    close(idPipe[0]);
    close(resultPipe[1]);
    pids[r] = pid;
    idWrite[r] = idPipe[1];
    resultRead[r] = resultPipe[0];
  }
  weftUniqueId id;
  if (weftGetUniqueId(&id) != weftSuccess) failures.push_back("weftGetUniqueId failed");
  for (int r = 0; r < nranks; ++r) {
    writeAll(idWrite[r], &id, sizeof(id));
    close(idWrite[r]);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
  std::vector<std::string> messages(static_cast<size_t>(nranks));
  std::vector<bool> open(static_cast<size_t>(nranks), true);
  int remaining = nranks;
  while (remaining > 0) {
    std::vector<pollfd> fds;
    std::vector<int> owners;
    for (int r = 0; r < nranks; ++r)
      if (open[r]) {
        fds.push_back({resultRead[r], POLLIN, 0});
        owners.push_back(r);
      }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    int rc = poll(fds.data(), fds.size(), static_cast<int>(std::min<long>(left.count(), 1000)));
    if (rc <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[4096];
      ssize_t n = read(fds[i].fd, buffer, sizeof(buffer));
      int r = owners[i];
      if (n > 0) {
        messages[r].append(buffer, static_cast<size_t>(n));
      } else {
        open[r] = false;
        close(resultRead[r]);
        --remaining;
      }
    }
  }
  for (int r = 0; r < nranks; ++r) {
    if (open[r]) {
      kill(pids[r], SIGKILL);
      close(resultRead[r]);
      failures.push_back("rank " + std::to_string(r) + ": still running after " + std::to_string(timeoutSeconds) +
                         " s; killed");
    }
    int status = 0;
    waitpid(pids[r], &status, 0);
    if (!open[r]) {
      if (!messages[r].empty())
        failures.push_back("rank " + std::to_string(r) + ": " + messages[r]);
      else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        failures.push_back("rank " + std::to_string(r) + ": exited with status " + std::to_string(status));
    }
  }
  return failures;
}

std::vector<std::string> runThreads(int nranks, const RankBody& body, int timeoutSeconds, bool device) {
  std::vector<std::string> failures;
  weftUniqueId id;
  if (weftGetUniqueId(&id) != weftSuccess) {
    failures.push_back(std::string("weftGetUniqueId failed: ") + weftGetLastError(nullptr));
    return failures;
  }
  std::vector<std::future<std::string>> results;
  for (int r = 0; r < nranks; ++r)
    results.push_back(std::async(std::launch::async, [&, r] { return runOne(id, r, nranks, body, device); }));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
  for (int r = 0; r < nranks; ++r) {
    if (results[r].wait_until(deadline) != std::future_status::ready) {
      // A thread rank cannot be killed; failing loudly beats hanging CI.
      fprintf(stderr, "rank %d: still running after %d s\n", r, timeoutSeconds);
      _exit(124);
    }
    std::string error = results[r].get();
    if (!error.empty()) failures.push_back("rank " + std::to_string(r) + ": " + error);
  }
  return failures;
}

}  // namespace

std::vector<std::string> runRanks(int nranks, RankMode mode, const RankBody& body, int timeoutSeconds) {
  // Sanitizer builds run many times slower: scripts/sanitize.sh stretches
  // every run's limit by WEFT_TEST_TIMEOUT_SCALE (a whole number, default 1).
  if (const char* scale = getenv("WEFT_TEST_TIMEOUT_SCALE"); scale != nullptr && atoi(scale) > 1)
    timeoutSeconds *= atoi(scale);
  switch (mode) {
    case RankMode::Threads: return runThreads(nranks, body, timeoutSeconds, false);
    case RankMode::DeviceThreads: return runThreads(nranks, body, timeoutSeconds, true);
    case RankMode::Processes: return runProcesses(nranks, body, timeoutSeconds, 0);
    case RankMode::DeviceProcesses: return runProcesses(nranks, body, timeoutSeconds, 0, true);
    case RankMode::DeviceNodes: return runProcesses(nranks, body, timeoutSeconds, 2, true);
    case RankMode::Nodes: return runProcesses(nranks, body, timeoutSeconds, 2);
    case RankMode::Nodes1: return runProcesses(nranks, body, timeoutSeconds, 1);
  }
  return {"unknown rank mode"};
}

std::string joinFailures(const std::vector<std::string>& failures) {
  std::string out;
  for (const auto& failure : failures) out += failure + "\n";
  return out;
}

}  // namespace weft::test
