// A third-party net plugin for the tests: it forwards to a copy of weft's
// socket plugin linked into it and counts the messages it carried, the way
// an outside network library would be loaded through WEFT_NET_PLUGIN. With
// WEFT_TEST_NET_PTR_CUDA=1 its devices say they take device memory, as an
// RDMA NIC with GPUDirect does (on the emulated device, device memory is
// host memory the sockets can carry): GPU communicators then hand it the
// kernel's own slots.
#include <stdlib.h>
#include <string.h>

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

bool claimsDeviceMemory() {
  const char* value = getenv("WEFT_TEST_NET_PTR_CUDA");
  return value != nullptr && strcmp(value, "1") == 0;
}

weftResult_t properties(int dev, weftNetProperties_v1_t* props) {
  weftResult_t rc = inner()->getProperties(dev, props);
  if (rc == weftSuccess && claimsDeviceMemory()) props->ptrSupport |= WEFT_NET_PTR_CUDA;
  return rc;
}

weftResult_t regMr(void* comm, void* data, size_t size, int type, void** mhandle) {
  if (type == WEFT_NET_PTR_CUDA && claimsDeviceMemory()) type = WEFT_NET_PTR_HOST;
  return inner()->regMr(comm, data, size, type, mhandle);
}

weftNet_v1_t makePlugin() {
  weftNet_v1_t plugin = *inner();
  plugin.name = "TestCounting";
  plugin.isend = countingIsend;
  plugin.getProperties = properties;
  plugin.regMr = regMr;
  return plugin;
}

}  // namespace

extern "C" {
weftNet_v1_t weftNetPlugin_v1 = makePlugin();
}
