// The net plugins weft knows: the built-in ones and a third party's loaded
// from WEFT_NET_PLUGIN. One is chosen per process, the first time a
// communicator spans nodes.
#pragma once

#include <string>

#include "core/socket.h"
#include "core/status.h"
#include "weft/net.h"

namespace weft {

const weftNet_v1_t* socketNetPlugin();
// The listening address inside a socket plugin handle (for tests that
// connect to it without the plugin).
SocketAddress socketHandleAddress(const void* handle);
// Null when weft was built without libibverbs.
const weftNet_v1_t* ibNetPlugin();

struct NetPluginChoice {
  const weftNet_v1_t* plugin = nullptr;
  int nDevices = 0;
};

// WEFT_NET_PLUGIN when set (an error if it cannot be loaded), else WEFT_NET,
// else IB when a verbs device is usable, else sockets. Initialises the
// plugin once per process.
Result<NetPluginChoice> chooseNetPlugin();

// Logs a plugin's message through weft's logger.
void netPluginLog(weftNetLogLevel_t level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace weft
