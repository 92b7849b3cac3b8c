#include "bootstrap/handshake.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "core/clock.h"
#include "core/logging.h"

namespace weft {
namespace {

constexpr char kHelloLabel[] = "weft-hello-v1";
constexpr char kAcceptorLabel[] = "weft-acceptor-v1";
// Log lines for the first drops of a listener; later ones are counted.
constexpr size_t kLoggedDrops = 8;

template <typename... Parts>
void macOver(const JobSecret& secret, uint8_t out[kMacBytes], const Parts&... parts) {
  std::vector<uint8_t> message;
  auto append = [&](const void* data, size_t bytes) {
    const auto* p = static_cast<const uint8_t*>(data);
    message.insert(message.end(), p, p + bytes);
  };
  (append(parts.first, parts.second), ...);
  hmacSha256(secret.bytes, kSecretBytes, message.data(), message.size(), out);
}

std::pair<const void*, size_t> bytesOf(const char* label) { return {label, strlen(label)}; }
template <typename T>
std::pair<const void*, size_t> bytesOf(const T& value) {
  return {&value, sizeof(value)};
}

}  // namespace

void hmacSha256(const uint8_t* key, size_t keyBytes, const void* data, size_t bytes, uint8_t out[kMacBytes]) {
  unsigned int length = kMacBytes;
  HMAC(EVP_sha256(), key, static_cast<int>(keyBytes), static_cast<const unsigned char*>(data), bytes, out, &length);
}

void helloMac(const JobSecret& secret, const Challenge& challenge, const Hello& hello, uint8_t out[kMacBytes]) {
  Hello claimed = hello;
  memset(claimed.mac, 0, sizeof(claimed.mac));
  macOver(secret, out, bytesOf(kHelloLabel), bytesOf(challenge), bytesOf(claimed));
}

void acceptorProof(const JobSecret& secret, const Challenge& challenge, const Hello& hello, uint8_t out[kMacBytes]) {
  macOver(secret, out, bytesOf(kAcceptorLabel), bytesOf(challenge.nonce), bytesOf(hello.nonce));
}

Status answerChallenge(Socket& sock, const JobSecret& secret, Hello* hello, Challenge* challenge,
                       uint64_t deadlineNanos, const std::atomic<bool>* abortFlag,
                       const std::function<void()>& whileWaiting) {
  if (whileWaiting) {
    pollfd fd{sock.fd(), POLLIN, 0};
    while (::poll(&fd, 1, 2) == 0) {
      if (monotonicNanos() >= deadlineNanos) break;  // recvAll reports the timeout
      if (abortFlag != nullptr && abortFlag->load()) break;
      whileWaiting();
    }
  }
  WEFT_CHECK(sock.recvAll(challenge, sizeof(*challenge), deadlineNanos, abortFlag));
  if (challenge->magic != kUniqueIdMagic || challenge->kind != hello->kind)
    return WEFT_ERROR(weftRemoteError, "%s is not a weft listener of the expected kind", sock.peerName().c_str());
  hello->magic = kUniqueIdMagic;
  WEFT_CHECK(randomBytes(hello->nonce, sizeof(hello->nonce)));
  helloMac(secret, *challenge, *hello, hello->mac);
  return sock.sendAll(hello, sizeof(*hello), deadlineNanos, abortFlag);
}

HelloAcceptor::HelloAcceptor(Socket* listener, const JobSecret& secret, HelloKind kind, std::string who)
    : listener_(listener), secret_(secret), kind_(kind), who_(std::move(who)) {}

HelloAcceptor::~HelloAcceptor() = default;

void HelloAcceptor::drop(Pending& pending, const char* why) {
  ++dropped_;
  if (dropped_ <= kLoggedDrops)
    WEFT_WARN("%s: dropped connection from %s: %s%s", who_.c_str(), pending.sock.peerName().c_str(), why,
              dropped_ == kLoggedDrops ? " (further drops are counted, not logged)" : "");
  pending.sock.close();
}

void HelloAcceptor::acceptNew() {
  for (;;) {
    int fd = ::accept4(listener_->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if ((errno == EMFILE || errno == ENFILE) && !pending_.empty()) {
        drop(pending_.front(), "too many connections waiting to answer (file descriptors ran out)");
        pending_.pop_front();
        continue;
      }
      return;  // EAGAIN: none left
    }
    tuneSocket(fd);
    if (pending_.size() >= kMaxPending) {
      drop(pending_.front(), "pushed out by newer connections while it had not answered");
      pending_.pop_front();
    }
    Pending pending;
    pending.sock = Socket(fd);
    pending.deadline = monotonicNanos() + kAnswerNanos;
    pending.challenge.magic = kUniqueIdMagic;
    pending.challenge.kind = static_cast<uint32_t>(kind_);
    if (!randomBytes(pending.challenge.nonce, sizeof(pending.challenge.nonce)).isOk()) {
      drop(pending, "no random nonce for its challenge");
      continue;
    }
    // A fresh socket's buffer takes the 24 bytes at once.
    ssize_t sent = ::send(fd, &pending.challenge, sizeof(pending.challenge), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent != static_cast<ssize_t>(sizeof(pending.challenge))) {
      drop(pending, "it could not take its challenge");
      continue;
    }
    pending_.push_back(std::move(pending));
  }
}

bool HelloAcceptor::takeReady(AcceptedHello* accepted) {
  if (ready_.empty()) return false;
  *accepted = std::move(ready_.front());
  ready_.pop_front();
  return true;
}

Result<AcceptedHello> HelloAcceptor::next(uint64_t deadlineNanos, const std::atomic<bool>* abortFlag) {
  for (;;) {
    AcceptedHello accepted;
    if (takeReady(&accepted)) return accepted;
    if (abortFlag != nullptr && abortFlag->load())
      return WEFT_ERROR(weftInvalidUsage, "%s: aborted while waiting for connections", who_.c_str());
    if (monotonicNanos() >= deadlineNanos)
      return WEFT_ERROR(weftTimeout, "%s: no connection that proved itself arrived within WEFT_TIMEOUT (%zu dropped)",
                        who_.c_str(), dropped_);
    serve(deadlineNanos);
  }
}

void HelloAcceptor::serve(uint64_t waitUntilNanos) {
  uint64_t now = monotonicNanos();
  for (Pending& pending : pending_)
    if (now >= pending.deadline)
      drop(pending, pending.got == 0 ? "it stayed silent for 2 s after its challenge" : "its answer stopped half-way");
  std::erase_if(pending_, [](const Pending& p) { return !p.sock.valid(); });
  uint64_t wake = waitUntilNanos;
  for (const Pending& pending : pending_) wake = std::min(wake, pending.deadline);
  int timeoutMs = wake <= now ? 0 : static_cast<int>(std::min<uint64_t>((wake - now) / 1000000 + 1, 100));
  fds_.assign(1, pollfd{listener_->fd(), POLLIN, 0});
  for (const Pending& pending : pending_) fds_.push_back(pollfd{pending.sock.fd(), POLLIN, 0});
  if (::poll(fds_.data(), fds_.size(), timeoutMs) <= 0) return;  // nothing yet, or EINTR
  // Answers first (fds_[1..] are the pending ones as they were polled), then new connections.
  for (size_t i = 0; i < pending_.size() && i + 1 < fds_.size(); ++i) {
    if (fds_[i + 1].revents == 0) continue;
    Pending& pending = pending_[i];
    ssize_t n = ::recv(pending.sock.fd(), reinterpret_cast<char*>(&pending.hello) + pending.got,
                       sizeof(Hello) - pending.got, 0);
    if (n == 0) {
      drop(pending, "it closed before answering its challenge");
      continue;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) drop(pending, strerror(errno));
      continue;
    }
    pending.got += static_cast<size_t>(n);
    if (pending.got < sizeof(Hello)) continue;
    uint8_t expected[kMacBytes];
    helloMac(secret_, pending.challenge, pending.hello, expected);
    if (pending.hello.magic != kUniqueIdMagic || pending.hello.kind != static_cast<uint32_t>(kind_)) {
      drop(pending, "not a weft hello of the expected kind");
    } else if (!equalConstantTime(expected, pending.hello.mac, kMacBytes)) {
      drop(pending, "its answer does not prove this job's secret (another job, or a replayed or forged hello)");
    } else {
      ready_.push_back(AcceptedHello{std::move(pending.sock), pending.hello, pending.challenge});
    }
  }
  std::erase_if(pending_, [](const Pending& p) { return !p.sock.valid(); });
  if (fds_[0].revents != 0) acceptNew();
}

}  // namespace weft
