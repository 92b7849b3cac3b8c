// The parsers of weft's environment variables and their values: integers
// with suffixes, socket addresses (WEFT_COMM_ID), interface and HCA filters
// (WEFT_SOCKET_IFNAME, WEFT_IB_HCA), fault specs (WEFT_FAULT_INJECT). The
// first byte picks the parser, the rest is the value (a NUL splits a filter
// from the name it is matched against).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/env.h"
#include "core/fault.h"
#include "core/socket.h"
#include "transports/net/ib/ib_logic.h"

using namespace weft;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string first = text.substr(0, text.find('\0'));
  std::string second = text.find('\0') == std::string::npos ? "" : text.substr(text.find('\0') + 1);
  switch (data[0] % 5) {
    case 0: {
      int64_t value = 0;
      (void)parseEnvInt(text, &value);
      break;
    }
    case 1: (void)parseSocketAddress(first); break;
    case 2: (void)interfaceMatches(first, second); break;
    case 3: (void)ib::hcaMatches(first, second, static_cast<int>(size % 3)); break;
    case 4: {
      FaultSpec spec;
      std::string why;
      (void)parseFaultSpec(text, &spec, &why);
      break;
    }
  }
  return 0;
}
