/* Built against an installed weft: one rank, one all-reduce. */
#include <stdio.h>
#include "weft/weft.h"

int main(void) {
  weftUniqueId id;
  weftComm_t comm;
  int version = 0;
  float x = 21.0f, y = 0.0f;
  if (weftGetVersion(&version) != weftSuccess || weftGetUniqueId(&id) != weftSuccess ||
      weftCommInitRank(&comm, 1, id, 0) != weftSuccess)
    return 1;
  if (weftAllReduce(&x, &y, 1, weftFloat32, weftSum, comm, NULL) != weftSuccess ||
      weftCommSynchronize(comm) != weftSuccess)
    return 1;
  weftCommDestroy(comm);
  printf("installed weft %d works: %g\n", version, y);
  return y == 21.0f ? 0 : 1;
}
