// What a weftUniqueId holds: the bootstrap root's address and the job secret
// every bootstrap connection must present.
#pragma once

#include <cstdint>

#include "core/socket.h"
#include "weft/weft.h"

namespace weft {

constexpr uint32_t kUniqueIdMagic = 0x54464557;  // "WEFT"
constexpr int kSecretBytes = 16;

struct JobSecret {
  uint8_t bytes[kSecretBytes] = {0};
};

struct UniqueIdData {
  SocketAddress root;
  JobSecret secret;
  // True when the id came from WEFT_COMM_ID: no root runs yet, rank 0 starts
  // it inside weftCommInitRank.
  bool rootStartedByRank0 = false;
};

void encodeUniqueId(const UniqueIdData& data, weftUniqueId* id);
Result<UniqueIdData> decodeUniqueId(const weftUniqueId& id);

// Bytes from the kernel's generator.
Status randomBytes(void* out, size_t bytes);
// A fresh random secret from the kernel's generator.
Status randomSecret(JobSecret* secret);
// Compares keys in time independent of where they differ.
bool equalConstantTime(const uint8_t* a, const uint8_t* b, size_t bytes);
// A secret every process derives from the same WEFT_COMM_ID text.
JobSecret secretFromText(const std::string& text);

// Packs an address into 20 bytes (family, port, 16 address bytes) for the wire.
struct WireAddress {
  uint16_t family = 0;
  uint16_t port = 0;
  uint8_t address[16] = {0};
};
WireAddress toWire(const SocketAddress& address);
SocketAddress fromWire(const WireAddress& wire);

}  // namespace weft
