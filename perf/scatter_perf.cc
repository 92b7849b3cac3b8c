#include "common/perf_driver.h"

int main(int argc, char** argv) { return weft::perf::perfMain(argc, argv, weft::perf::PerfColl::Scatter); }
