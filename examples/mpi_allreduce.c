/* A weft communicator under mpirun: rank 0 makes the unique id, MPI_Bcast
 * hands it to everyone, then every rank all-reduces a vector and checks it.
 *
 *   mpirun -np 4 ./build/examples/mpi_allreduce
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "weft/weft.h"

#define CHECK(call)                                                                                 \
  do {                                                                                              \
    weftResult_t r = (call);                                                                        \
    if (r != weftSuccess) {                                                                         \
      fprintf(stderr, "%s failed: %s: %s\n", #call, weftGetErrorString(r), weftGetLastError(NULL)); \
      MPI_Abort(MPI_COMM_WORLD, 1);                                                                 \
    }                                                                                               \
  } while (0)

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, nranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);

  weftUniqueId id;
  if (rank == 0) CHECK(weftGetUniqueId(&id));
  MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD);

  weftComm_t comm;
  CHECK(weftCommInitRank(&comm, nranks, id, rank));

  size_t count = 1 << 20;
  float* data = malloc(count * sizeof(float));
  for (size_t i = 0; i < count; ++i) data[i] = (float)(rank + 1);
  CHECK(weftAllReduce(data, data, count, weftFloat32, weftSum, comm, NULL)); /* returns at once */
  CHECK(weftCommSynchronize(comm));                                          /* waits for it */

  float expected = (float)(nranks * (nranks + 1) / 2);
  size_t wrong = 0;
  for (size_t i = 0; i < count; ++i) wrong += data[i] != expected;
  printf("rank %d/%d: all-reduce of %zu floats %s (expected %.0f everywhere)\n", rank, nranks, count,
         wrong ? "WRONG" : "correct", expected);
  free(data);
  CHECK(weftCommDestroy(comm));
  MPI_Finalize();
  return wrong ? 1 : 0;
}
