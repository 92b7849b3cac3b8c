#define WEFT_REDUCE_NAMESPACE generic
#define WEFT_REDUCE_ISA "generic"
#include "exec/reduce_kernels.inc"
