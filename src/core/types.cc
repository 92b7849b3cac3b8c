#include "core/types.h"

namespace weft {

const char* typeName(weftDataType_t type) {
  static const char* kNames[] = {"int8",    "uint8",   "int32",   "uint32",   "int64",   "uint64",
                                 "float16", "float32", "float64", "bfloat16", "fp8e4m3", "fp8e5m2"};
  return validType(type) ? kNames[type] : "invalid-type";
}

const char* redOpName(weftRedOp_t op) {
  static const char* kNames[] = {"sum", "prod", "max", "min", "avg"};
  return validRedOp(op) ? kNames[op] : "invalid-op";
}

}  // namespace weft
