// Built with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mf16c; only called
// when the CPU reports all of them.
#define WEFT_REDUCE_NAMESPACE avx512
#define WEFT_REDUCE_ISA "avx512"
#define WEFT_REDUCE_USE_F16C 1
#define WEFT_REDUCE_USE_AVX512 1
#include "exec/reduce_kernels.inc"
