// Who is silent: every communicator answers status queries on a listener of
// its own, from a thread that does nothing else, so a rank blocked in a
// collective still answers and a rank that does not answer is stopped, hung
// in the kernel, or gone. A rank whose wait timed out asks every peer at
// once (HelloKind::Liveness, authenticated like the bootstrap) and names the
// ones that did not answer, with the last call they completed as their node
// peers saw it, and where the others wait.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "bootstrap/unique_id.h"
#include "core/socket.h"
#include "core/status.h"

namespace weft {

constexpr int kLivenessMaxLocal = 64;

// What a rank says of itself, and of the ranks it shares a node with.
struct LivenessReply {
  uint32_t magic = 0;
  int32_t rank = -1;
  uint64_t lastCompleted = 0;  // CallRef
  uint64_t inProgress = 0;     // CallRef; 0: idle
  int32_t nLocal = 0;
  int32_t localRanks[kLivenessMaxLocal] = {0};
  uint64_t localProgress[kLivenessMaxLocal] = {0};  // their last completed calls
};

class LivenessService {
 public:
  using Reporter = std::function<void(LivenessReply*)>;
  // Listens on address's host (any port) and answers with what report fills in.
  static Result<std::unique_ptr<LivenessService>> start(const SocketAddress& address, const JobSecret& secret, int rank,
                                                        int nranks, Reporter report);
  ~LivenessService();
  const SocketAddress& address() const { return bound_; }

 private:
  LivenessService() = default;
  void serve();

  Socket listener_;
  SocketAddress bound_;
  JobSecret secret_{};
  int rank_ = -1;
  int nranks_ = 0;
  Reporter report_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Asks the rank at address; an error when it does not answer by the deadline.
Result<LivenessReply> queryLiveness(const SocketAddress& address, const JobSecret& secret, int myRank, int nranks,
                                    uint64_t deadlineNanos);

}  // namespace weft
