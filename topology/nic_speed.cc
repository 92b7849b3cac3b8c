#include "topology/nic_speed.h"

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <vector>

#if WEFT_HAVE_IBVERBS
#include <infiniband/verbs.h>
#endif

namespace weft {
namespace {

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return names;
  while (dirent* entry = readdir(dir))
    if (entry->d_name[0] != '.') names.push_back(entry->d_name);
  closedir(dir);
  return names;
}

std::string firstLine(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  return line;
}

}  // namespace

int verbsPortSpeedMbps(int activeSpeed, int activeWidth) {
  // Per-lane rates of the verbs speed codes (SDR .. NDR), in Mb/s.
  int lane = 0;
  switch (activeSpeed) {
    case 1: lane = 2500; break;
    case 2: lane = 5000; break;
    case 4:
    case 8: lane = 10000; break;
    case 16: lane = 14000; break;
    case 32: lane = 25000; break;
    case 64: lane = 50000; break;
    case 128: lane = 100000; break;
    default: lane = 0;
  }
  int lanes = 0;
  switch (activeWidth) {
    case 1: lanes = 1; break;
    case 2: lanes = 4; break;
    case 4: lanes = 8; break;
    case 8: lanes = 12; break;
    case 16: lanes = 2; break;
    default: lanes = 0;
  }
  return lane * lanes;
}

double ibRateGBps(const std::string& rate) {
  char* end = nullptr;
  double value = strtod(rate.c_str(), &end);
  if (end == rate.c_str() || value <= 0) return 0;
  std::string unit(end);
  if (unit.rfind(" Gb/sec", 0) == 0) return value / 8.0;
  if (unit.rfind(" Mb/sec", 0) == 0) return value / 8000.0;
  return 0;
}

std::map<std::string, double> sysfsNicSpeeds(const std::string& sysRoot) {
  std::map<std::string, double> speeds;
  std::string ib = sysRoot + "/class/infiniband";
  for (const std::string& device : listDir(ib)) {
    double fastest = 0;
    for (const std::string& port : listDir(ib + "/" + device + "/ports")) {
      std::string dir = ib + "/" + device + "/ports/" + port;
      // "4: ACTIVE"; a port that is down has no meaningful rate.
      if (firstLine(dir + "/state").find("ACTIVE") == std::string::npos) continue;
      fastest = std::max(fastest, ibRateGBps(firstLine(dir + "/rate")));
    }
    if (fastest > 0) speeds[device] = fastest;
  }
  std::string net = sysRoot + "/class/net";
  for (const std::string& iface : listDir(net)) {
    std::string text = firstLine(net + "/" + iface + "/speed");
    char* end = nullptr;
    long mbps = strtol(text.c_str(), &end, 10);
    if (end != text.c_str() && mbps > 0) speeds[iface] = static_cast<double>(mbps) / 8000.0;
  }
  return speeds;
}

std::map<std::string, double> verbsNicSpeeds() {
  std::map<std::string, double> speeds;
#if WEFT_HAVE_IBVERBS
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (list == nullptr) return speeds;
  for (int d = 0; d < n; ++d) {
    ibv_context* context = ibv_open_device(list[d]);
    if (context == nullptr) continue;
    ibv_device_attr device{};
    if (ibv_query_device(context, &device) == 0)
      for (int port = 1; port <= device.phys_port_cnt; ++port) {
        ibv_port_attr attr{};
        if (ibv_query_port(context, static_cast<uint8_t>(port), &attr) != 0 || attr.state != IBV_PORT_ACTIVE) continue;
        double gbps = verbsPortSpeedMbps(attr.active_speed, attr.active_width) / 8000.0;
        std::string name = ibv_get_device_name(list[d]);
        if (gbps > speeds[name]) speeds[name] = gbps;
      }
    ibv_close_device(context);
  }
  ibv_free_device_list(list);
#endif
  return speeds;
}

std::map<std::string, double> liveNicSpeeds() {
  std::map<std::string, double> speeds = verbsNicSpeeds();
  for (const auto& [name, gbps] : sysfsNicSpeeds("/sys")) speeds.emplace(name, gbps);
  return speeds;
}

}  // namespace weft
