// Where a rank's host threads should run: the CPUs of the NUMA node the
// rank runs on (its memory's node), within whatever mask the user or the
// launcher already set.
#pragma once

#include <sched.h>

#include <string>

namespace weft {

// Parses a Linux cpulist ("0-3,8,10-11") into set; false when malformed.
bool parseCpuList(const std::string& text, cpu_set_t* set);

// The CPUs of NUMA node `numa` (from /sys), intersected with this thread's
// current affinity; false when unknown or the intersection is empty.
bool numaNodeCpus(int numa, cpu_set_t* set);

// CPUs this thread may run on (its affinity mask); 1 when unknown.
int affinityCpuCount();

// The CPU's vendor string from CPUID ("GenuineIntel", "AuthenticAMD"); empty
// off x86.
std::string cpuVendor();

// "0-3,8" for messages.
std::string describeCpuSet(const cpu_set_t& set);

}  // namespace weft
