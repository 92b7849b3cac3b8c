// The parts of the IB plugin that need no device, kept apart so that they
// are unit-tested on machines without an HCA: device/port filtering, RoCE
// GID choice from sysfs, link speed, splitting a message over queue pairs,
// the registration cache and the connection hello.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace weft::ib {

// WEFT_IB_HCA with the socket syntax: "mlx5_0:1,mlx5_1" (prefixes, a port
// after ':'), "^mlx5_2" excludes, "=mlx5_0" exact names.
bool hcaMatches(const std::string& filter, const std::string& device, int port);

// The GID index for RoCE from the port's sysfs folder
// (/sys/class/infiniband/<dev>/ports/<port>): requested >= 0 is taken as
// is; otherwise a RoCE v2 GID holding an IPv4-mapped address, else a RoCE v2
// GID with a global IPv6 address, else 0. InfiniBand ports (no RoCE types)
// get 0.
int chooseGidIndex(const std::string& portDir, int requested);

struct Chunk {
  size_t offset;
  size_t bytes;
};
// One chunk per queue pair (some may be empty), 4 KiB aligned.
std::vector<Chunk> splitAcrossQps(size_t bytes, int nQps);

// Registrations reused across calls: a lookup inside a registered range
// takes a reference instead of registering again; the last release
// deregisters. Ranges are widened to whole pages.
class MrCache {
 public:
  using RegisterFn = std::function<void*(void* base, size_t bytes)>;  // null on failure
  using DeregisterFn = std::function<void(void* handle)>;
  MrCache(RegisterFn reg, DeregisterFn dereg) : register_(std::move(reg)), deregister_(std::move(dereg)) {}
  ~MrCache();
  void* acquire(void* data, size_t bytes);
  void release(void* handle);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uintptr_t base;
    size_t bytes;
    void* handle;
    int refs;
  };
  RegisterFn register_;
  DeregisterFn deregister_;
  std::vector<Entry> entries_;
};

// What each side of a connection tells the other over the set-up socket.
// The job key itself never travels: the accepting side first sends a fresh
// nonce, the connecting side's hello carries an HMAC-SHA256 under the key of
// that nonce and the hello, and the reply one of the connecting side's own
// nonce and the reply, so each side proves the key to the other.
constexpr uint32_t kHelloMagic = 0x57494249;  // "WIBI"
constexpr size_t kNonceBytes = 16;
constexpr size_t kMacBytes = 32;
constexpr int kMaxQps = 16;
struct QpInfo {
  uint32_t qpn;
  uint32_t psn;
  uint16_t lid;
  uint8_t linkLayer;  // IBV_LINK_LAYER_*
  uint8_t mtu;        // ibv_mtu
  uint8_t gid[16];
};
struct Hello {
  uint32_t magic;
  uint32_t nQps;
  uint64_t listenId;
  uint8_t nonce[kNonceBytes];  // the connecting side's own (zero in a reply)
  uint8_t mac[kMacBytes];
  uint64_t fifoAddr;  // this side's FIFO; the receiver writes into the sender's, the other is unused
  uint32_t fifoRkey;
  uint32_t pad;
  QpInfo qps[kMaxQps];
};
// The MAC of hello (its mac field taken as zero) under key, answering
// peerNonce; reply: the accepting side's answer rather than the connecting
// side's hello (the two are labelled apart, so one cannot stand for the other).
void helloMac(const Hello& hello, const uint8_t* key, const uint8_t* peerNonce, bool reply, uint8_t out[kMacBytes]);
// Empty when acceptable (its MAC answers myNonce under key, for listenId);
// else why not.
std::string checkHello(const Hello& hello, const uint8_t* key, const uint8_t* myNonce, bool reply, uint64_t listenId);

}  // namespace weft::ib
