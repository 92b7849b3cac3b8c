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

// Mb/s of a port from ibv_port_attr's active_speed and active_width codes.
int portSpeedMbps(int activeSpeed, int activeWidth);

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
constexpr uint32_t kHelloMagic = 0x57494248;  // "WIBH"
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
  uint8_t key[16];
  uint64_t fifoAddr;  // this side's FIFO; the receiver writes into the sender's, the other is unused
  uint32_t fifoRkey;
  uint32_t pad;
  QpInfo qps[kMaxQps];
};
// Empty when acceptable; else why not.
std::string checkHello(const Hello& hello, const uint8_t* key, uint64_t listenId);

}  // namespace weft::ib
