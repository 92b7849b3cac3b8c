#include "transports/net/ib/ib_logic.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "bootstrap/handshake.h"
#include "bootstrap/unique_id.h"
#include "core/socket.h"

namespace weft::ib {

bool hcaMatches(const std::string& filter, const std::string& device, int port) {
  return listFilterMatches(filter, [&](const std::string& item, bool exact) {
    std::string entry = item;
    int wantPort = -1;
    size_t colon = entry.find(':');
    if (colon != std::string::npos) {
      wantPort = atoi(entry.c_str() + colon + 1);
      entry = entry.substr(0, colon);
    }
    bool nameOk = exact ? device == entry : device.compare(0, entry.size(), entry) == 0;
    return nameOk && (wantPort < 0 || wantPort == port);
  });
}

namespace {

std::string firstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// sysfs writes GIDs as eight groups of four hex digits.
bool parseGid(const std::string& text, uint8_t out[16]) {
  std::string hex;
  for (char c : text)
    if (c != ':') hex += c;
  if (hex.size() != 32) return false;
  for (int i = 0; i < 16; ++i) out[i] = static_cast<uint8_t>(strtoul(hex.substr(i * 2, 2).c_str(), nullptr, 16));
  return true;
}

}  // namespace

int chooseGidIndex(const std::string& portDir, int requested) {
  if (requested >= 0) return requested;
  int ipv6 = -1;
  for (int i = 0; i < 256; ++i) {
    std::string type = firstLine(portDir + "/gid_attrs/types/" + std::to_string(i));
    if (type.empty()) continue;
    uint8_t gid[16];
    if (!parseGid(firstLine(portDir + "/gids/" + std::to_string(i)), gid)) continue;
    bool zero = std::all_of(gid, gid + 16, [](uint8_t b) { return b == 0; });
    if (zero || type.find("v2") == std::string::npos) continue;
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(gid, kMapped, 12) == 0) return i;
    bool linkLocal = gid[0] == 0xfe && (gid[1] & 0xc0) == 0x80;
    if (!linkLocal && ipv6 < 0) ipv6 = i;
  }
  return ipv6 >= 0 ? ipv6 : 0;
}

std::vector<Chunk> splitAcrossQps(size_t bytes, int nQps) {
  nQps = std::max(1, nQps);
  size_t per = (bytes + nQps - 1) / nQps;
  per = (per + 4095) & ~static_cast<size_t>(4095);
  std::vector<Chunk> chunks;
  for (int q = 0; q < nQps; ++q) {
    size_t offset = std::min(bytes, per * q);
    chunks.push_back({offset, std::min(per, bytes - offset)});
  }
  return chunks;
}

MrCache::~MrCache() {
  for (Entry& entry : entries_) deregister_(entry.handle);
}

void* MrCache::acquire(void* data, size_t bytes) {
  uintptr_t begin = reinterpret_cast<uintptr_t>(data) & ~static_cast<uintptr_t>(4095);
  uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes + 4095) & ~static_cast<uintptr_t>(4095);
  for (Entry& entry : entries_)
    if (entry.base <= begin && end <= entry.base + entry.bytes) {
      ++entry.refs;
      return entry.handle;
    }
  void* handle = register_(reinterpret_cast<void*>(begin), end - begin);
  if (handle == nullptr) return nullptr;
  entries_.push_back({begin, end - begin, handle, 1});
  return handle;
}

void MrCache::release(void* handle) {
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].handle == handle && --entries_[i].refs == 0) {
      deregister_(handle);
      entries_.erase(entries_.begin() + static_cast<long>(i));
      return;
    }
}

void helloMac(const Hello& hello, const uint8_t* key, const uint8_t* peerNonce, bool reply, uint8_t out[kMacBytes]) {
  static constexpr char kHelloLabel[] = "weft-net-ib-hello-v1";
  static constexpr char kReplyLabel[] = "weft-net-ib-reply-v1";
  static_assert(sizeof(kHelloLabel) == sizeof(kReplyLabel), "labels of one length");
  Hello claimed = hello;
  memset(claimed.mac, 0, sizeof(claimed.mac));
  uint8_t message[sizeof(kHelloLabel) + kNonceBytes + sizeof(Hello)];
  memcpy(message, reply ? kReplyLabel : kHelloLabel, sizeof(kHelloLabel));
  memcpy(message + sizeof(kHelloLabel), peerNonce, kNonceBytes);
  memcpy(message + sizeof(kHelloLabel) + kNonceBytes, &claimed, sizeof(claimed));
  hmacSha256(key, 16, message, sizeof(message), out);
}

std::string checkHello(const Hello& hello, const uint8_t* key, const uint8_t* myNonce, bool reply, uint64_t listenId) {
  if (hello.magic != kHelloMagic) return "not a weft IB connection (bad hello)";
  uint8_t expected[kMacBytes];
  helloMac(hello, key, myNonce, reply, expected);
  if (!equalConstantTime(hello.mac, expected, kMacBytes))
    return "its answer does not prove the job key (another job, or a replayed or forged connection)";
  if (hello.listenId != listenId) return "meant for another listener";
  if (hello.nQps < 1 || hello.nQps > static_cast<uint32_t>(kMaxQps)) return "bad queue pair count";
  return "";
}

}  // namespace weft::ib
