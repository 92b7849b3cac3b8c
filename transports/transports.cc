#include "transports/transports.h"

namespace weft {
namespace {

bool sameHost(const PeerFacts& peer) { return peer.sameHost; }
bool anyPeer(const PeerFacts&) { return true; }

constexpr TransportEntry kTransports[] = {
    {"shm", sameHost},
    {"net", anyPeer},
};

}  // namespace

std::span<const TransportEntry> transportList() { return kTransports; }

int chooseTransport(const PeerFacts& peer) {
  for (size_t i = 0; i < std::size(kTransports); ++i)
    if (kTransports[i].canConnect(peer)) return static_cast<int>(i);
  return -1;  // not reached: the network reaches everyone
}

Transports::Transports(std::vector<std::unique_ptr<Transport>> transports, std::vector<int8_t> transportOf,
                       size_t slotBytes)
    : transports_(std::move(transports)), transportOf_(std::move(transportOf)), slotBytes_(slotBytes) {
  node_ = static_cast<ShmTransport*>(transports_[kShmTransport].get());
}

void Transports::reportFatal(int rank, weftResult_t code, const std::string& message) {
  node_->reportFatal(rank, code, message);
  for (const auto& transport : transports_)
    if (transport != nullptr && transport.get() != node_) transport->abortConnections();
}

}  // namespace weft
