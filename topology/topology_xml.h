// weft's own XML for what it believes about a machine: every node with its
// kind, place in the tree, PCIe link speed and locality, and the NVLink
// bandwidths. Readable, and loadable again into the same graph; the file a
// user attaches to a bug report (weft-topo --xml, WEFT_TOPO_DUMP_FILE).
#pragma once

#include <string>

#include "topology/machine.h"

namespace weft {

std::string topologyToXml(const MachineTopology& topo);
Status writeTopologyXml(const MachineTopology& topo, const std::string& path);
// Reads a file written by writeTopologyXml.
Result<MachineTopology> readTopologyXml(const std::string& path);
// True when the file starts like one of weft's (rather than hwloc's).
bool isWeftTopologyXml(const std::string& path);

}  // namespace weft
