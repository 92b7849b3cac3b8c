#include "topology/nvml.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <map>

namespace weft {
namespace {

// The few NVML declarations used, as the NVML API defines them (the header
// need not be installed to build weft).
using nvmlReturn = int;
constexpr nvmlReturn kNvmlSuccess = 0;
using nvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlPciInfo {
  char busIdLegacy[16];
  unsigned domain;
  unsigned bus;
  unsigned device;
  unsigned pciDeviceId;
  unsigned pciSubSystemId;
  char busId[32];
};
constexpr unsigned kNvmlMaxLinks = 18;
constexpr int kNvmlFeatureEnabled = 1;

struct Nvml {
  nvmlReturn (*init)();
  nvmlReturn (*shutdown)();
  const char* (*errorString)(nvmlReturn);
  nvmlReturn (*count)(unsigned*);
  nvmlReturn (*handle)(unsigned, nvmlDevice*);
  nvmlReturn (*pciInfo)(nvmlDevice, NvmlPciInfo*);
  nvmlReturn (*linkState)(nvmlDevice, unsigned, int*);
  nvmlReturn (*linkVersion)(nvmlDevice, unsigned, unsigned*);
  nvmlReturn (*remotePci)(nvmlDevice, unsigned, NvmlPciInfo*);
};

std::string busIdOf(const NvmlPciInfo& pci) {
  char text[32];
  snprintf(text, sizeof(text), "%04x:%02x:%02x.0", pci.domain & 0xffff, pci.bus & 0xff, pci.device & 0x1f);
  return text;
}

}  // namespace

double nvlinkLinkGBps(unsigned version) {
  // One direction of one link: NVLink 1 (P100) 20 GB/s; 2, 3 and 4 (V100,
  // A100, H100) 25 GB/s; 5 (B200) 50 GB/s.
  switch (version) {
    case 1: return 20;
    case 2:
    case 3:
    case 4: return 25;
    case 5: return 50;
    default: return 0;
  }
}

Result<std::vector<NvmlGpuLinks>> queryNvmlLinks(const std::string& library) {
  void* lib = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return WEFT_ERROR(weftSystemError, "NVML not loaded: %s", dlerror());
  Nvml nvml{};
  std::string missing;
  auto bind = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (fn == nullptr && missing.empty()) missing = name;
  };
  bind(nvml.init, "nvmlInit_v2");
  bind(nvml.shutdown, "nvmlShutdown");
  bind(nvml.errorString, "nvmlErrorString");
  bind(nvml.count, "nvmlDeviceGetCount_v2");
  bind(nvml.handle, "nvmlDeviceGetHandleByIndex_v2");
  bind(nvml.pciInfo, "nvmlDeviceGetPciInfo_v3");
  bind(nvml.linkState, "nvmlDeviceGetNvLinkState");
  bind(nvml.linkVersion, "nvmlDeviceGetNvLinkVersion");
  bind(nvml.remotePci, "nvmlDeviceGetNvLinkRemotePciInfo_v2");
  if (!missing.empty()) {
    dlclose(lib);
    return WEFT_ERROR(weftSystemError, "NVML library %s lacks %s", library.c_str(), missing.c_str());
  }
  nvmlReturn rc = nvml.init();
  if (rc != kNvmlSuccess) {
    std::string why = nvml.errorString(rc);
    dlclose(lib);
    return WEFT_ERROR(weftSystemError, "nvmlInit failed: %s", why.c_str());
  }
  std::vector<NvmlGpuLinks> gpus;
  unsigned count = 0;
  if (nvml.count(&count) == kNvmlSuccess)
    for (unsigned i = 0; i < count; ++i) {
      nvmlDevice device = nullptr;
      NvmlPciInfo pci{};
      if (nvml.handle(i, &device) != kNvmlSuccess || nvml.pciInfo(device, &pci) != kNvmlSuccess) continue;
      NvmlGpuLinks gpu;
      gpu.busId = busIdOf(pci);
      // Links past the device's last one answer with an error.
      for (unsigned link = 0; link < kNvmlMaxLinks; ++link) {
        int state = 0;
        if (nvml.linkState(device, link, &state) != kNvmlSuccess) break;
        if (state != kNvmlFeatureEnabled) continue;
        unsigned version = 0;
        NvmlPciInfo remote{};
        if (nvml.linkVersion(device, link, &version) != kNvmlSuccess ||
            nvml.remotePci(device, link, &remote) != kNvmlSuccess)
          continue;
        gpu.links.push_back({busIdOf(remote), nvlinkLinkGBps(version)});
      }
      gpus.push_back(gpu);
    }
  nvml.shutdown();
  dlclose(lib);
  return gpus;
}

int applyNvmlLinks(const std::vector<NvmlGpuLinks>& gpus, MachineTopology* topo) {
  std::map<std::string, size_t> gpuIndex;
  for (size_t g = 0; g < topo->gpus.size(); ++g) gpuIndex[topo->nodes[topo->gpus[g]].busId] = g;
  size_t n = topo->gpus.size();
  if (topo->nvlinkGBps.size() != n) topo->nvlinkGBps.assign(n, std::vector<double>(n, 0.0));
  if (topo->nvswitchGBps.size() != n) topo->nvswitchGBps.assign(n, 0.0);
  int used = 0;
  for (const NvmlGpuLinks& gpu : gpus) {
    auto self = gpuIndex.find(gpu.busId);
    if (self == gpuIndex.end()) continue;
    for (const NvmlGpuLinks::Link& link : gpu.links) {
      auto peer = gpuIndex.find(link.remoteBusId);
      if (peer == gpuIndex.end())
        topo->nvswitchGBps[self->second] += link.gbps;
      else if (peer->second != self->second)
        topo->nvlinkGBps[self->second][peer->second] += link.gbps;
      else
        continue;
      ++used;
    }
  }
  return used;
}

}  // namespace weft
