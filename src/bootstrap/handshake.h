// How a connection proves it belongs to the job without sending the secret:
// the accepting side sends a fresh random nonce, the connecting side answers
// with its rank and an HMAC-SHA256, keyed with the job secret, over that
// nonce, a nonce of its own and everything it claims. A recorded hello is
// bound to a nonce that is never offered again, so it cannot be replayed;
// an eavesdropper learns no secret. The bootstrap root also proves itself
// back (an HMAC over both nonces), so a rank never takes its peer table from
// an impostor.
//
// HelloAcceptor serves a listener for many connections at once: each new
// connection gets its challenge at once and a few seconds to answer, and the
// ones that stay silent, send junk or fail the check are dropped without
// delaying the others. So stray or hostile connections cost the real ranks
// nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <poll.h>

#include "bootstrap/unique_id.h"
#include "core/socket.h"
#include "core/status.h"

namespace weft {

constexpr int kNonceBytes = 16;
constexpr int kMacBytes = 32;  // HMAC-SHA256

// Which listener a hello is meant for.
enum class HelloKind : uint32_t { Root = 1, Peer = 2, Liveness = 3 };

struct Challenge {
  uint32_t magic;
  uint32_t kind;
  uint8_t nonce[kNonceBytes];
};

struct Hello {
  uint32_t magic;
  uint32_t kind;
  int32_t rank;
  int32_t nranks;
  WireAddress listen;
  WireAddress service;         // to the root: the rank's liveness service (see bootstrap/liveness.h)
  uint8_t nonce[kNonceBytes];  // the connecting side's own
  uint8_t mac[kMacBytes];
};

// HMAC-SHA256 of data under key.
void hmacSha256(const uint8_t* key, size_t keyBytes, const void* data, size_t bytes, uint8_t out[kMacBytes]);

// The MAC a hello must carry for this challenge.
void helloMac(const JobSecret& secret, const Challenge& challenge, const Hello& hello, uint8_t out[kMacBytes]);
// The acceptor's proof that it knows the secret too.
void acceptorProof(const JobSecret& secret, const Challenge& challenge, const Hello& hello, uint8_t out[kMacBytes]);

// Connecting side: reads the challenge from sock and answers it. hello's
// kind, rank, nranks and listen are filled in by the caller; nonce and mac
// here. The challenge is returned for a later acceptorProof check.
// whileWaiting, when given, runs every few milliseconds until the challenge
// comes: a rank serves its own listener there, since its peer may be
// waiting for a challenge from it at the same time.
Status answerChallenge(Socket& sock, const JobSecret& secret, Hello* hello, Challenge* challenge,
                       uint64_t deadlineNanos, const std::atomic<bool>* abortFlag,
                       const std::function<void()>& whileWaiting = nullptr);

struct AcceptedHello {
  Socket sock;
  Hello hello;
  Challenge challenge;
};

class HelloAcceptor {
 public:
  // who names the listener's owner in log lines ("bootstrap root", "rank 3").
  HelloAcceptor(Socket* listener, const JobSecret& secret, HelloKind kind, std::string who);
  ~HelloAcceptor();

  // The next connection whose hello passed the check, or an error at the
  // deadline (or on abort). Strays are dropped meanwhile, with a log line.
  Result<AcceptedHello> next(uint64_t deadlineNanos, const std::atomic<bool>* abortFlag);
  // One round of service: challenges new connections, reads answers and
  // drops strays, waiting for activity until waitUntilNanos at most.
  void serve(uint64_t waitUntilNanos);
  // A connection that proved itself, if serve() found one.
  bool takeReady(AcceptedHello* accepted);
  size_t dropped() const { return dropped_; }

  // A connection gets this long to answer its challenge.
  static constexpr uint64_t kAnswerNanos = 2000000000ull;
  // At most this many connections wait to answer; a new one beyond it
  // pushes out the oldest (real ranks answer within microseconds).
  static constexpr size_t kMaxPending = 512;

 private:
  struct Pending {
    Socket sock;
    uint64_t deadline = 0;
    Challenge challenge{};
    Hello hello{};
    size_t got = 0;
  };
  void acceptNew();
  void drop(Pending& pending, const char* why);
  std::vector<pollfd> fds_;

  Socket* listener_;
  JobSecret secret_;
  HelloKind kind_;
  std::string who_;
  std::deque<Pending> pending_;
  std::deque<AcceptedHello> ready_;
  size_t dropped_ = 0;
};

}  // namespace weft
