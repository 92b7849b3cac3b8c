/* Built against an installed weft: one rank, one all-reduce, and one
 * bucketer iteration through the C API of weft/bucket.h (a C compiler
 * checks that the header is plain C). */
#include <stdio.h>
#include "weft/bucket.h"
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
  weftBucketerConfig_t config = WEFT_BUCKETER_CONFIG_INITIALIZER;
  config.mode = weftBucketCopyIn;
  config.op = weftSum;
  weftBucketer_t bucketer;
  float grad[3] = {1.0f, 2.0f, 3.0f};
  int index = -1;
  if (weftBucketerCreate(comm, &config, &bucketer) != weftSuccess ||
      weftBucketerAddParam(bucketer, "w", grad, 3, weftFloat32, &index) != weftSuccess ||
      weftBucketerMarkReady(bucketer, index) != weftSuccess || weftBucketerFinish(bucketer) != weftSuccess ||
      weftBucketerDestroy(bucketer) != weftSuccess)
    return 1;
  weftCommDestroy(comm);
  printf("installed weft %d works: %g, bucketed %g\n", version, y, grad[2]);
  return y == 21.0f && grad[2] == 3.0f ? 0 : 1;
}
