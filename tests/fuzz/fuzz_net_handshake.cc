// The socket net plugin's accepting side: a connection that sends any bytes
// instead of the keyed hello is dropped, never accepted, never a crash.
#include <cstdlib>
#include <cstring>

#include "bootstrap/unique_id.h"
#include "fuzz_common.h"
#include "transports/net/net_plugin.h"

using namespace weft;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("WEFT_DEBUG", "NONE", 1);  // every input is a dropped stray: no log line each
  setenv("WEFT_SOCKET_IFNAME", "lo", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const weftNet_v1_t* plugin = socketNetPlugin();
  static void* listenComm = nullptr;
  static SocketAddress address;
  if (listenComm == nullptr) {
    if (plugin->init(nullptr) != weftSuccess) abort();
    weftNetKey_t key{};
    for (int i = 0; i < WEFT_NET_KEY_BYTES; ++i) key.bytes[i] = static_cast<uint8_t>(i * 13 + 5);
    char handle[WEFT_NET_HANDLE_BYTES];
    if (plugin->listen(0, &key, handle, &listenComm) != weftSuccess) abort();
    address = socketHandleAddress(handle);
  }
  fuzz::sendAndHalfClose(address, data, size);
  for (int i = 0; i < 20; ++i) {
    void* accepted = nullptr;
    if (plugin->accept(listenComm, &accepted) != weftSuccess) abort();
    if (accepted != nullptr) abort();  // bytes without the key were accepted
  }
  return 0;
}
