// Names and sizes of the public enums, for messages and tools.
#pragma once

#include <cstddef>

#include "weft/weft.h"

namespace weft {

const char* typeName(weftDataType_t type);
const char* redOpName(weftRedOp_t op);
size_t typeSize(weftDataType_t type);  // 0 for an invalid type
bool validType(int type);
bool validRedOp(int op);

}  // namespace weft
