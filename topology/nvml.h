// NVLink between GPUs at run time, from NVML loaded with dlopen (never a
// link dependency): for machines whose hwloc has no NVLinkBandwidth matrix.
// Each GPU's active links and what is at their far end, by PCI bus id: a
// GPU of this machine (direct NVLink) or anything else (an NVSwitch).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "topology/machine.h"

namespace weft {

struct NvmlGpuLinks {
  std::string busId;  // dddd:bb:dd.f, lower case
  struct Link {
    std::string remoteBusId;
    double gbps = 0;  // one direction, from the link's NVLink version
  };
  std::vector<Link> links;  // active links only
};

// GB/s per link and direction of NVLink version 1..5 (0 when unknown).
double nvlinkLinkGBps(unsigned version);

// Queries NVML from `library` (libnvidia-ml.so.1 normally). Errors say why:
// the library is missing, a symbol is, or NVML failed to initialise.
Result<std::vector<NvmlGpuLinks>> queryNvmlLinks(const std::string& library);

// Adds the links to the GPUs of topo matched by bus id (links to GPUs the
// topology does not know count as NVSwitch links). Returns the number of
// links used.
int applyNvmlLinks(const std::vector<NvmlGpuLinks>& gpus, MachineTopology* topo);

}  // namespace weft
