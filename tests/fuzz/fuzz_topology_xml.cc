// The topology XML reader (WEFT_TOPO_FILE, weft-topo exports): any file
// gives a topology or an error, never a crash. The input is the file.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "topology/topology_xml.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int fd = memfd_create("weft-fuzz-topology", 0);
  static std::string path = "/proc/self/fd/" + std::to_string(fd);
  if (fd < 0) abort();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) abort();
  (void)weft::isWeftTopologyXml(path);
  (void)weft::readTopologyXml(path);
  return 0;
}
