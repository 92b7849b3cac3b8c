#include "topology/affinity.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace weft {

bool parseCpuList(const std::string& text, cpu_set_t* set) {
  CPU_ZERO(set);
  std::istringstream in(text);
  std::string range;
  bool any = false;
  while (std::getline(in, range, ',')) {
    while (!range.empty() && (range.back() == '\n' || range.back() == ' ')) range.pop_back();
    if (range.empty()) continue;
    char* end = nullptr;
    long lo = strtol(range.c_str(), &end, 10);
    if (end == range.c_str() || lo < 0) return false;
    long hi = lo;
    if (*end == '-') {
      const char* start = end + 1;
      hi = strtol(start, &end, 10);
      if (end == start || hi < lo) return false;
    }
    if (*end != '\0') return false;
    for (long cpu = lo; cpu <= hi && cpu < CPU_SETSIZE; ++cpu) CPU_SET(static_cast<int>(cpu), set);
    any = true;
  }
  return any;
}

bool numaNodeCpus(int numa, cpu_set_t* set) {
  if (numa < 0) return false;
  std::ifstream file("/sys/devices/system/node/node" + std::to_string(numa) + "/cpulist");
  std::string text;
  if (!file || !std::getline(file, text) || !parseCpuList(text, set)) return false;
  cpu_set_t current;
  if (sched_getaffinity(0, sizeof(current), &current) != 0) return false;
  CPU_AND(set, set, &current);
  return CPU_COUNT(set) > 0;
}

std::string describeCpuSet(const cpu_set_t& set) {
  std::string out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    int last = cpu;
    while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) ++last;
    if (!out.empty()) out += ",";
    out += last == cpu ? std::to_string(cpu) : std::to_string(cpu) + "-" + std::to_string(last);
    cpu = last;
  }
  return out;
}

std::string cpuVendor() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return "";
  char vendor[13];
  memcpy(vendor, &ebx, 4);
  memcpy(vendor + 4, &edx, 4);
  memcpy(vendor + 8, &ecx, 4);
  vendor[12] = '\0';
  return vendor;
#else
  return "";
#endif
}

int affinityCpuCount() {
  cpu_set_t cpus;
  return sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
}

}  // namespace weft
