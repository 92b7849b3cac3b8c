// Names and sizes of the public enums, for messages and tools.
#pragma once

#include <cstddef>

#include "weft/weft.h"

namespace weft {

const char* typeName(weftDataType_t type);
const char* redOpName(weftRedOp_t op);

inline bool validType(int type) { return type >= 0 && type < weftNumTypes; }
inline bool validRedOp(int op) { return op >= 0 && op < weftNumOps; }
// 0 for an invalid type.
inline size_t typeSize(weftDataType_t type) {
  constexpr size_t kSizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2, 1, 1};
  return validType(type) ? kSizes[type] : 0;
}

}  // namespace weft
