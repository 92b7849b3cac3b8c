// Built when libibverbs was not found: there is no IB plugin.
#include "transports/net/net_plugin.h"

namespace weft {

const weftNet_v1_t* ibNetPlugin() { return nullptr; }

}  // namespace weft
