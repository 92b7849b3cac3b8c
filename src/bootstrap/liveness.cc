#include "bootstrap/liveness.h"

#include "bootstrap/handshake.h"
#include "core/clock.h"
#include "core/logging.h"

namespace weft {

Result<std::unique_ptr<LivenessService>> LivenessService::start(const SocketAddress& address, const JobSecret& secret,
                                                                int rank, int nranks, Reporter report) {
  std::unique_ptr<LivenessService> service(new LivenessService());
  SocketAddress any = address;
  any.setPort(0);
  Result<Socket> listener = Socket::listen(any, &service->bound_);
  if (!listener.isOk()) return listener.status();
  service->listener_ = listener.take();
  service->secret_ = secret;
  service->rank_ = rank;
  service->nranks_ = nranks;
  service->report_ = std::move(report);
  service->thread_ = std::thread([raw = service.get()] { raw->serve(); });
  return service;
}

LivenessService::~LivenessService() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void LivenessService::serve() {
  HelloAcceptor acceptor(&listener_, secret_, HelloKind::Liveness, format("rank %d liveness", rank_));
  while (!stop_.load()) {
    acceptor.serve(monotonicNanos() + 100000000ull);  // wakes every 100 ms to look at stop_
    AcceptedHello asked;
    while (acceptor.takeReady(&asked)) {
      LivenessReply reply;
      report_(&reply);
      reply.magic = kUniqueIdMagic;
      reply.rank = rank_;
      Status sent = asked.sock.sendAll(&reply, sizeof(reply), monotonicNanos() + 1000000000ull, nullptr);
      if (!sent.isOk())
        WEFT_INFO(kLogBoot, "rank %d: liveness reply to rank %d: %s", rank_, asked.hello.rank, sent.message().c_str());
    }
  }
}

Result<LivenessReply> queryLiveness(const SocketAddress& address, const JobSecret& secret, int myRank, int nranks,
                                    uint64_t deadlineNanos) {
  // Its service refusing means the rank is gone: no point waiting for it.
  Result<Socket> sock = Socket::connect(address, deadlineNanos, nullptr, false);
  if (!sock.isOk()) return sock.status();
  Hello hello{};
  hello.kind = static_cast<uint32_t>(HelloKind::Liveness);
  hello.rank = myRank;
  hello.nranks = nranks;
  Challenge challenge{};
  WEFT_CHECK(answerChallenge(sock.value(), secret, &hello, &challenge, deadlineNanos, nullptr));
  LivenessReply reply;
  WEFT_CHECK(sock.value().recvAll(&reply, sizeof(reply), deadlineNanos, nullptr));
  if (reply.magic != kUniqueIdMagic)
    return WEFT_ERROR(weftRemoteError, "liveness reply from %s is corrupt", address.toString().c_str());
  return reply;
}

}  // namespace weft
