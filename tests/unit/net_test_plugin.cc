// A third-party net plugin for the tests: it forwards to a copy of weft's
// socket plugin linked into it and counts the messages it carried, the way
// an outside network library would be loaded through WEFT_NET_PLUGIN.
#include <atomic>

#include "weft/net.h"

namespace weft {
const weftNet_v1_t* socketNetPlugin();
}

extern "C" {
std::atomic<long> weftTestPluginSends{0};
}

namespace {

const weftNet_v1_t* inner() { return weft::socketNetPlugin(); }

weftResult_t countingIsend(void* comm, void* data, size_t size, int tag, void* mhandle, void** request) {
  weftResult_t rc = inner()->isend(comm, data, size, tag, mhandle, request);
  if (rc == weftSuccess && *request != nullptr) ++weftTestPluginSends;
  return rc;
}

weftNet_v1_t makePlugin() {
  weftNet_v1_t plugin = *inner();
  plugin.name = "TestCounting";
  plugin.isend = countingIsend;
  return plugin;
}

}  // namespace

extern "C" {
weftNet_v1_t weftNetPlugin_v1 = makePlugin();
}
