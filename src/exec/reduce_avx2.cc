// Built with -mavx2 -mf16c; only called when the CPU reports both.
#define WEFT_REDUCE_NAMESPACE avx2
#define WEFT_REDUCE_ISA "avx2"
#define WEFT_REDUCE_USE_F16C 1
#include "exec/reduce_kernels.inc"
