// Element-wise reductions for every weft type and op, vectorised: the kernels
// are compiled once for any x86-64 (or other) CPU, once with AVX2/F16C and
// once with AVX-512 (plus binary16 arithmetic where the CPU has AVX-512
// FP16), and the fastest set the CPU supports is picked at start-up.
#pragma once

#include <cstddef>
#include <vector>

#include "weft/weft.h"

namespace weft {

// dst[i] = a[i] op b[i] for n elements (weftAvg reduces as a sum; the
// division happens once, in the final step, through ScaleFn). dst may alias a
// or b.
using ReduceFn = void (*)(void* dst, const void* a, const void* b, size_t n);
// dst[i] = dst[i] / divisor, rounded once, for weftAvg's final write.
using DivideFn = void (*)(void* dst, size_t n, int divisor);
// dst[i] = src[i] * scalar (the type's arithmetic, rounded once; integers
// wrap), for a PreMulSum's input. scalar points at one element of the type.
using ScaleFn = void (*)(void* dst, const void* src, size_t n, const void* scalar);

struct ReduceKernels {
  ReduceFn reduce[weftNumTypes][weftNumOps];
  DivideFn divide[weftNumTypes];
  ScaleFn scale[weftNumTypes];
  const char* isa;  // "generic", "avx2", "avx512" or "avx512+fp16"
};

// Kernels read both sources this far ahead with software prefetches, once a
// call covers at least kPrefetchMinBytes. Measured (datapath_probe
// --prefetch, two cores reading memory at once) on a Xeon (Sapphire Rapids)
// VM: 9.6-9.8 GB/s per core without prefetches, 11.1-11.6 at 2-16 KiB ahead,
// 13.0-13.4 with 64-byte loads; any distance from 2 KiB on is within noise.
constexpr size_t kPrefetchBytes = 2048;
constexpr size_t kPrefetchMinBytes = 1024;

const ReduceKernels& reduceKernels();

inline ReduceFn reduceFunction(weftDataType_t type, weftRedOp_t op) { return reduceKernels().reduce[type][op]; }
inline DivideFn divideFunction(weftDataType_t type) { return reduceKernels().divide[type]; }
inline ScaleFn scaleFunction(weftDataType_t type) { return reduceKernels().scale[type]; }

// dst = a op b, with dst written by non-temporal stores (dst is an output far
// larger than the caches), and copy, when not null, given the same values by
// ordinary stores (an outgoing slot, read next by a peer). One pass: the
// values are produced a chunk at a time in cache by fn and stored from there.
void reduceStreaming(ReduceFn fn, size_t typeBytes, void* dst, void* copy, const void* a, const void* b, size_t n);

// Kernel tables per instruction set.
const ReduceKernels& genericReduceKernels();
const ReduceKernels* avx2ReduceKernels();    // nullptr when not built or the CPU lacks AVX2/F16C
const ReduceKernels* avx512ReduceKernels();  // nullptr when not built or the CPU lacks AVX-512 F/BW/VL/DQ
// Every set this build has and this CPU runs, the generic one first and the
// one reduceKernels() picks last.
std::vector<const ReduceKernels*> availableReduceKernels();

}  // namespace weft
