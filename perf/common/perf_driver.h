// The driver behind every perf binary: nccl-tests' flags and columns, exact
// verification, ranks as threads (-t) and/or processes (mpirun, or
// WEFT_RANK/WEFT_NRANKS/WEFT_COMM_ID), and Open MPI's equivalent collective
// timed in the same run on the same buffers (-C 1).
#pragma once

namespace weft::perf {

enum class PerfColl { AllReduce, ReduceScatter, AllGather, Broadcast, Reduce, SendRecv, AllToAll, Gather, Scatter };

int perfMain(int argc, char** argv, PerfColl coll);

}  // namespace weft::perf
