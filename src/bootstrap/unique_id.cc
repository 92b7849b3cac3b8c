#include "bootstrap/unique_id.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

namespace weft {

namespace {
struct PackedId {
  uint32_t magic;
  uint16_t version;
  uint16_t flags;
  WireAddress root;
  uint8_t secret[kSecretBytes];
};
static_assert(sizeof(PackedId) <= sizeof(weftUniqueId), "unique id layout too large");
constexpr uint16_t kIdVersion = 1;
constexpr uint16_t kFlagRootByRank0 = 1;
}  // namespace

bool equalConstantTime(const uint8_t* a, const uint8_t* b, size_t bytes) {
  uint8_t diff = 0;
  for (size_t i = 0; i < bytes; ++i) diff |= static_cast<uint8_t>(a[i] ^ b[i]);
  return diff == 0;
}

WireAddress toWire(const SocketAddress& address) {
  WireAddress wire;
  wire.family = static_cast<uint16_t>(address.family());
  wire.port = address.port();
  if (address.family() == AF_INET)
    memcpy(wire.address, &reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr, 4);
  else if (address.family() == AF_INET6)
    memcpy(wire.address, &reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr, 16);
  return wire;
}

SocketAddress fromWire(const WireAddress& wire) {
  SocketAddress address;
  if (wire.family == AF_INET) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&address.storage);
    sa->sin_family = AF_INET;
    memcpy(&sa->sin_addr, wire.address, 4);
    address.length = sizeof(sockaddr_in);
  } else if (wire.family == AF_INET6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&address.storage);
    sa->sin6_family = AF_INET6;
    memcpy(&sa->sin6_addr, wire.address, 16);
    address.length = sizeof(sockaddr_in6);
  }
  address.setPort(wire.port);
  return address;
}

void encodeUniqueId(const UniqueIdData& data, weftUniqueId* id) {
  memset(id, 0, sizeof(*id));
  PackedId packed{};
  packed.magic = kUniqueIdMagic;
  packed.version = kIdVersion;
  packed.flags = data.rootStartedByRank0 ? kFlagRootByRank0 : 0;
  packed.root = toWire(data.root);
  memcpy(packed.secret, data.secret.bytes, kSecretBytes);
  memcpy(id->internal, &packed, sizeof(packed));
}

Result<UniqueIdData> decodeUniqueId(const weftUniqueId& id) {
  PackedId packed;
  memcpy(&packed, id.internal, sizeof(packed));
  if (packed.magic != kUniqueIdMagic || packed.version != kIdVersion ||
      (packed.root.family != AF_INET && packed.root.family != AF_INET6))
    return WEFT_ERROR(weftInvalidArgument,
                      "the unique id is not one weftGetUniqueId made (bad magic or version); "
                      "broadcast the id from one rank to all the others unchanged");
  UniqueIdData data;
  data.root = fromWire(packed.root);
  memcpy(data.secret.bytes, packed.secret, kSecretBytes);
  data.rootStartedByRank0 = (packed.flags & kFlagRootByRank0) != 0;
  return data;
}

Status randomBytes(void* out, size_t bytes) {
  size_t filled = 0;
  while (filled < bytes) {
    ssize_t n = getrandom(static_cast<char*>(out) + filled, bytes - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return WEFT_ERROR(weftSystemError, "getrandom failed: %s", strerror(errno));
    }
    filled += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status randomSecret(JobSecret* secret) { return randomBytes(secret->bytes, sizeof(secret->bytes)); }

JobSecret secretFromText(const std::string& text) {
  // Two FNV-1a passes with different offsets; this only keeps stray
  // connections out, it is no protection against someone who knows the text.
  JobSecret secret;
  for (int half = 0; half < 2; ++half) {
    uint64_t hash = half == 0 ? 0xcbf29ce484222325ull : 0x84222325cbf29ce4ull;
    for (char c : text) {
      hash ^= static_cast<uint8_t>(c);
      hash *= 0x100000001b3ull;
    }
    memcpy(secret.bytes + 8 * half, &hash, 8);
  }
  return secret;
}

}  // namespace weft
