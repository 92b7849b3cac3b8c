// Port speeds of this machine's NICs, by the OS device names hwloc gives
// them (mlx5_0, eth0): libibverbs port attributes for RDMA devices when weft
// is built with libibverbs and a device answers, sysfs for the rest.
#pragma once

#include <map>
#include <string>

namespace weft {

// Mb/s of an RDMA port from ibv_port_attr's active_speed and active_width
// codes (the net transport's IB plugin reads them too).
int verbsPortSpeedMbps(int activeSpeed, int activeWidth);

// "400 Gb/sec (4X NDR)" (an RDMA port's rate file) in GB/s; 0 when unreadable.
double ibRateGBps(const std::string& rate);

// Speeds in GB/s from a sysfs tree (sysRoot is "/sys" on a live machine):
// class/infiniband/DEV/ports/N/rate of active ports (the fastest port of a
// device), class/net/IF/speed (Mb/s; -1 or absent when the driver does not
// say, as on virtual NICs). Devices without a known speed are left out.
std::map<std::string, double> sysfsNicSpeeds(const std::string& sysRoot);

// Active port speeds from libibverbs (ibv_query_port), GB/s per device name;
// empty without libibverbs or devices.
std::map<std::string, double> verbsNicSpeeds();

// Verbs first, sysfs for what verbs did not name.
std::map<std::string, double> liveNicSpeeds();

}  // namespace weft
