// weft-info: the version, the reduction kernels in use, the algorithms of
// the registry (what WEFT_ALGO takes), and the table of environment
// variables weft reads (the one table in core/env.cc).
#include <cstdio>
#include <cstring>

#include "algorithms/registry.h"
#include "core/env.h"
#include "exec/reduce.h"
#include "weft/weft.h"

int main(int argc, char** argv) {
  bool markdown = argc > 1 && strcmp(argv[1], "--markdown") == 0;
  if (argc > 1 && !markdown) {
    printf(
        "usage: weft-info [--markdown]\n  prints the version, the algorithms and the environment variables weft "
        "reads\n");
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  int version = 0;
  weftGetVersion(&version);
  const weft::EnvParamInfo* table = weft::envParamTable();
  int count = static_cast<int>(weft::EnvParam::Count);
  if (markdown) {
    printf("| variable | default | meaning |\n|---|---|---|\n");
    for (int i = 0; i < count; ++i)
      printf("| `%s` | `%s` | %s |\n", table[i].name, table[i].defaultValue[0] ? table[i].defaultValue : "(unset)",
             table[i].description);
    return 0;
  }
  printf("weft %d.%d.%d, host reduction kernels: %s\n\n", version / 10000, version / 100 % 100, version % 100,
         weft::reduceKernels().isa);
  printf("Algorithms (WEFT_ALGO, any case):\n");
  for (const weft::AlgorithmEntry& entry : weft::algorithmRegistry())
    printf("  %-10s %s\n             for %s\n", entry.name, entry.summary, weft::supportedCollectives(entry).c_str());
  printf("\nEnvironment variables:\n");
  for (int i = 0; i < count; ++i) {
    const char* value = getenv(table[i].name);
    printf("  %-26s default '%s'%s%s%s\n      %s\n", table[i].name, table[i].defaultValue, value ? ", set to '" : "",
           value ? value : "", value ? "'" : "", table[i].description);
  }
  return 0;
}
