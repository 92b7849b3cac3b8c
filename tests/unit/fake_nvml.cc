// A stand-in for libnvidia-ml.so, loaded by the topology tests through the
// same dlopen path as the real one. It describes four GPUs of
// tests/data/topologies/pcie8gpu-synthetic.xml: GPUs 12:00 and 13:00 joined
// by two NVLink 3 links, every one of the four with four links into an
// NVSwitch at 80:00, and a fifth GPU the topology does not have.
#include <cstdio>
#include <cstring>

extern "C" {

struct PciInfo {
  char busIdLegacy[16];
  unsigned domain, bus, device, pciDeviceId, pciSubSystemId;
  char busId[32];
};

namespace {
constexpr unsigned kGpus = 5;
const unsigned kBus[kGpus] = {0x12, 0x13, 0x32, 0x33, 0xee};
constexpr unsigned kLinks = 6;
int gInit = 0;

int gpuOf(void* device) { return static_cast<int>(reinterpret_cast<long>(device)) - 1; }

// Remote bus of link l of GPU g: links 0-1 of GPUs 0 and 1 join them.
unsigned remoteBus(int g, unsigned link) {
  if (link < 2 && g == 0) return kBus[1];
  if (link < 2 && g == 1) return kBus[0];
  return 0x80;
}

void fill(PciInfo* pci, unsigned bus) {
  memset(pci, 0, sizeof(*pci));
  pci->domain = 0;
  pci->bus = bus;
  snprintf(pci->busId, sizeof(pci->busId), "00000000:%02X:00.0", bus);
}
}  // namespace

int nvmlInit_v2() {
  gInit = 1;
  return 0;
}
int nvmlShutdown() {
  gInit = 0;
  return 0;
}
const char* nvmlErrorString(int) { return "fake"; }
int nvmlDeviceGetCount_v2(unsigned* count) {
  *count = kGpus;
  return gInit ? 0 : 1;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void** device) {
  if (i >= kGpus) return 2;
  *device = reinterpret_cast<void*>(static_cast<long>(i) + 1);
  return 0;
}
int nvmlDeviceGetPciInfo_v3(void* device, PciInfo* pci) {
  fill(pci, kBus[gpuOf(device)]);
  return 0;
}
int nvmlDeviceGetNvLinkState(void* device, unsigned link, int* enabled) {
  if (link >= kLinks) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  // GPUs 2 and 3 have their sixth link down; the fifth GPU has none up.
  int g = gpuOf(device);
  *enabled = !(g == 4 || (g >= 2 && link == 5));
  return 0;
}
int nvmlDeviceGetNvLinkVersion(void*, unsigned, unsigned* version) {
  *version = 3;
  return 0;
}
int nvmlDeviceGetNvLinkRemotePciInfo_v2(void* device, unsigned link, PciInfo* pci) {
  fill(pci, remoteBus(gpuOf(device), link));
  return 0;
}

}  // extern "C"
