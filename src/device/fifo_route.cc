#include "device/fifo_route.h"

namespace weft {

FifoRoute chooseFifoRoute(const FifoRouteQuery& query) {
  if (query.p2pDisabled) return {true, "WEFT_P2P_DISABLE"};
  if (!query.reachable)
    return {true, query.emulated ? "emulated device memory of another process" : "no peer access between the GPUs"};
  if (query.busId == query.peerBusId) return {false, "the same GPU"};
  int a = query.topo != nullptr ? query.topo->gpuByBusId(query.busId) : -1;
  int b = query.topo != nullptr ? query.topo->gpuByBusId(query.peerBusId) : -1;
  if (a < 0 || b < 0) return {false, "peer access (path not in the topology)"};
  PathClass path = query.topo->path(a, b).cls;
  // Peer-to-peer writes through the CPUs' interconnect are slower than a
  // copy through host memory on most machines (NCCL's P2P level stops at
  // the host bridge by default too).
  if (path == PathClass::CrossSocket) return {true, "across CPU sockets"};
  return {false, pathClassName(path)};
}

std::vector<std::vector<bool>> fifoRoutesAgreed(const std::vector<std::vector<bool>>& wantsHost) {
  size_t n = wantsHost.size();
  std::vector<std::vector<bool>> host(n, std::vector<bool>(n, false));
  for (size_t r = 0; r < n; ++r)
    for (size_t p = 0; p < n; ++p) host[r][p] = p != r && (wantsHost[r][p] || wantsHost[p][r]);
  return host;
}

}  // namespace weft
