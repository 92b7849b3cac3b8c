// Naming the silent rank. A timeout alone says only that this rank waited;
// the rank it waited for may itself be waiting on a third. So the rank that
// timed out asks every peer's liveness service at once (1 s each): ranks
// that answer say which call they are in and what their node peers last
// completed; ranks that do not answer are the silent ones. The error then
// reads, for example: "rank 2 (node7:4242) is not responding; its last
// completed call is #41 AllReduce; ranks 0, 1, 3 wait in #42 AllReduce".
// The error reaches the other ranks of the node with the failure report, and
// every other rank that times out finds the same.
#include <algorithm>
#include <map>
#include <optional>
#include <thread>

#include "api/comm.h"
#include "core/clock.h"
#include "exec/call_ref.h"

namespace weft {
namespace {

constexpr uint64_t kAnswerNanos = 1000000000ull;
constexpr int kMaxAskers = 16;

std::string rankList(const std::vector<int>& ranks) {
  std::string out = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) out += (i ? ", " : "") + std::to_string(ranks[i]);
  return out;
}

}  // namespace

void reportLiveness(weftComm* comm, LivenessReply* reply) {
  Executor* executor = comm->liveExecutor.load(std::memory_order_acquire);
  if (executor != nullptr) {
    reply->lastCompleted = executor->lastCompleted();
    reply->inProgress = executor->inProgress();
  }
  Transports* transports = comm->liveTransports.load(std::memory_order_acquire);
  if (transports == nullptr) return;
  for (int peer : transports->localRanks()) {
    if (reply->nLocal == kLivenessMaxLocal) break;
    uint64_t progress = kNoCall;
    if (!transports->progressOf(peer, &progress)) continue;
    reply->localRanks[reply->nLocal] = peer;
    reply->localProgress[reply->nLocal] = progress;
    ++reply->nLocal;
  }
}

Status explainTimeout(weftComm* comm, const Status& timeout) {
  int n = comm->nranks;
  std::vector<std::optional<LivenessReply>> replies(static_cast<size_t>(n));
  uint64_t deadline = monotonicNanos() + kAnswerNanos;
  const JobSecret& secret = comm->bootstrap->secret();
  int askers = std::min(kMaxAskers, std::max(1, n - 1));
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(askers));
  for (int a = 0; a < askers; ++a)
    threads.emplace_back([&, a] {
      for (int peer = a; peer < n; peer += askers) {
        if (peer == comm->rank) continue;
        Result<LivenessReply> reply = queryLiveness(comm->livenessAddresses[peer], secret, comm->rank, n, deadline);
        if (reply.isOk() && reply.value().rank == peer) replies[peer] = reply.value();
      }
    });
  for (std::thread& thread : threads) thread.join();
  LivenessReply self;
  reportLiveness(comm, &self);
  replies[comm->rank] = self;

  // What the node peers of a silent rank last saw it complete.
  auto progressOf = [&](int silent) -> std::optional<CallRef> {
    for (const auto& reply : replies) {
      if (!reply) continue;
      for (int i = 0; i < reply->nLocal; ++i)
        if (reply->localRanks[i] == silent) return reply->localProgress[i];
    }
    return std::nullopt;
  };
  std::string text;
  std::vector<int> silent;
  // During init (no executor yet) there are no calls to speak of, and the
  // hosts may not be known yet: the liveness address names the rank then.
  bool inInit = comm->liveExecutor.load(std::memory_order_acquire) == nullptr;
  for (int r = 0; r < n; ++r) {
    if (replies[r]) continue;
    silent.push_back(r);
    std::string where =
        static_cast<size_t>(r) < comm->rankHosts.size() ? comm->rankHosts[r] : comm->livenessAddresses[r].toString();
    if (inInit) {
      text += format("rank %d (%s) is not responding during communicator init; ", r, where.c_str());
      continue;
    }
    std::optional<CallRef> last = progressOf(r);
    text += format("rank %d (%s) is not responding; its last completed call is %s; ", r, where.c_str(),
                   last ? describeCallRef(*last).c_str() : "unknown (no rank that answered shares its node)");
  }
  if (inInit) {
    std::vector<int> answered;
    for (int r = 0; r < n; ++r)
      if (replies[r]) answered.push_back(r);
    text +=
        silent.empty() ? "every rank answers" : rankList(answered) + (answered.size() == 1 ? " answers" : " answer");
    return Status(timeout.code(), format("rank %d: %s (%s)", comm->rank, text.c_str(), timeout.message().c_str()));
  }
  // Where everyone who answered is: grouped by call, idle ranks apart.
  std::map<CallRef, std::vector<int>> waitingIn, idleAfter;
  for (int r = 0; r < n; ++r) {
    if (!replies[r]) continue;
    if (replies[r]->inProgress != kNoCall)
      waitingIn[replies[r]->inProgress].push_back(r);
    else
      idleAfter[replies[r]->lastCompleted].push_back(r);
  }
  std::vector<std::string> parts;
  parts.reserve(waitingIn.size() + idleAfter.size());
  for (const auto& [call, ranks] : waitingIn)
    parts.push_back(format("%s wait%s in %s", rankList(ranks).c_str(), ranks.size() == 1 ? "s" : "",
                           describeCallRef(call).c_str()));
  for (const auto& [call, ranks] : idleAfter)
    parts.push_back(format("%s %s idle after %s (not in the call the others wait in)", rankList(ranks).c_str(),
                           ranks.size() == 1 ? "is" : "are",
                           call == kNoCall ? "making no call yet" : describeCallRef(call).c_str()));
  if (silent.empty()) text += "every rank answers; ";
  for (size_t i = 0; i < parts.size(); ++i) text += parts[i] + (i + 1 < parts.size() ? "; " : "");
  return Status(timeout.code(), format("rank %d: %s (%s)", comm->rank, text.c_str(), timeout.message().c_str()));
}

}  // namespace weft
