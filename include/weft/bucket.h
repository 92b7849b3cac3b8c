/*
 * weft's gradient bucketer: the C API.
 *
 * A data-parallel training step produces gradients during the backward pass,
 * last layer first. The bucketer groups them into buckets by size in that
 * order and launches each bucket's all-reduce (or reduce-scatter) the moment
 * its last gradient is marked ready, so communication runs while the rest of
 * the backward pass computes. weftBucketerFinish() waits for every bucket.
 *
 * Use:
 *   weftBucketerConfig_t config = WEFT_BUCKETER_CONFIG_INITIALIZER;
 *   weftBucketerCreate(comm, &config, &bucketer);
 *   for each parameter: weftBucketerAddParam(bucketer, name, grad, count, type, &index);
 *   weftBucketerFinalize(bucketer);           // collective: every rank, same point
 *   each iteration:
 *     backward; after each gradient is written: weftBucketerMarkReady(bucketer, index);
 *     weftBucketerFinish(bucketer);           // gradients now reduced
 *
 * Buckets: parameters in the order backward is expected to produce them
 * (reverse registration order; after the first iteration, the order rank 0
 * observed, which every rank adopts), one data type per bucket. The first
 * bucket closes at firstBucketBytes, later ones at bucketCapBytes; a
 * parameter larger than the cap gets a bucket of its own. Buckets are
 * launched strictly in bucket order on every rank, whatever order their
 * gradients became ready in.
 *
 * Modes: weftBucketView (no copies): the bucketer owns flat storage and
 * weftBucketerGradient() gives each parameter's gradient buffer, a view into
 * it, into which backward writes. The views move once, when the order is
 * rebuilt after the first iteration (their contents move with them): fetch
 * them again after the first weftBucketerFinish(), or whenever
 * layoutVersion in weftBucketerStats() changed. weftBucketCopyIn: the
 * gradients live where the program keeps them (the grad pointer of
 * weftBucketerAddParam); weftBucketerMarkReady copies one into its bucket
 * slot and weftBucketerFinish copies the results back.
 *
 * Errors are specific and name the parameter or the rank: a gradient marked
 * twice in one iteration, one not marked before finish (that rank still
 * launches its buckets, so no peer waits on it, and every rank's finish
 * fails naming it: one small all-reduce per iteration carries the check),
 * layouts that differ across ranks (checked once, at finalize, by an
 * all-gather of a layout digest). After an error of its own the bucketer
 * starts the next iteration afresh; the communicator stays usable.
 *
 * GPU communicators: config.stream is the stream that produces the
 * gradients; buckets run on a communication stream of the bucketer's,
 * ordered after it with events, and finish orders the gradient stream after
 * the communication. Host communicators: stream must be NULL.
 */
#ifndef WEFT_BUCKET_H_
#define WEFT_BUCKET_H_

#include <stddef.h>

#include "weft/weft.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

typedef struct weftBucketer* weftBucketer_t;

typedef enum { weftBucketView = 0, weftBucketCopyIn = 1 } weftBucketMode_t;
/* All-reduce every bucket (data parallel), or reduce-scatter it so that each
 * rank holds the reduced values of its shard only (sharded optimizer state,
 * ZeRO-style): see weftBucketerBucketInfo for a rank's shard. */
typedef enum { weftBucketAllReduce = 0, weftBucketReduceScatter = 1 } weftBucketReduction_t;

#define WEFT_BUCKETER_CONFIG_MAGIC 0x6275636bu /* "buck" */
typedef struct {
  size_t size;             /* set by WEFT_BUCKETER_CONFIG_INITIALIZER */
  unsigned int magic;      /* set by WEFT_BUCKETER_CONFIG_INITIALIZER */
  unsigned int version;    /* set by WEFT_BUCKETER_CONFIG_INITIALIZER */
  size_t firstBucketBytes; /* 1 MiB */
  size_t bucketCapBytes;   /* 25 MiB */
  int mode;                /* weftBucketMode_t; weftBucketView */
  int reduction;           /* weftBucketReduction_t; weftBucketAllReduce */
  int op;                  /* weftSum or weftAvg; weftAvg */
  int rebuildOrder;        /* 1 (default): adopt the order observed in the first iteration */
  weftStream_t stream;     /* GPU communicators: the gradient-producing stream; host: NULL */
} weftBucketerConfig_t;
#define WEFT_BUCKETER_CONFIG_INITIALIZER                                                                            \
  {                                                                                                                 \
    sizeof(weftBucketerConfig_t), WEFT_BUCKETER_CONFIG_MAGIC, WEFT_VERSION_CODE, (size_t)1 << 20, (size_t)25 << 20, \
        weftBucketView, weftBucketAllReduce, weftAvg, 1, NULL                                                       \
  }

/* One iteration's figures, with DDP's definitions; times in seconds. */
typedef struct {
  unsigned long long iteration;     /* iterations finished so far */
  unsigned long long layoutVersion; /* changes when the gradient views move */
  int buckets;
  size_t bytes;           /* gradient bytes communicated (padding included) */
  double backwardCompute; /* first markReady to last markReady */
  double communication;   /* first bucket launch to last bucket completion */
  double exposed;         /* last markReady to last bucket completion */
  double overlap;         /* communication - exposed: what ran behind compute */
} weftBucketStats_t;

/* Where a bucket lies; after finalize. */
typedef struct {
  weftDataType_t type;
  size_t count; /* elements communicated (padding included) */
  size_t bytes;
  int firstParam;     /* the parameter whose gradient comes first, in bucket order */
  int params;         /* how many parameters it holds */
  size_t shardOffset; /* reduce-scatter: this rank's shard, in elements of the bucket */
  size_t shardCount;
  double launchedAt;  /* last iteration: seconds after its first markReady (-1: not launched) */
  double completedAt; /* ... and when its completion was seen */
} weftBucketInfo_t;

weftResult_t weftBucketerCreate(weftComm_t comm, const weftBucketerConfig_t* config, weftBucketer_t* bucketer);
/* Registers a parameter's gradient before finalize. grad: copy-in mode, the
 * program's gradient buffer (count elements of type); view mode, NULL (the
 * bucketer's storage is the gradient). name may be NULL ("param<index>"). */
weftResult_t weftBucketerAddParam(weftBucketer_t bucketer, const char* name, void* grad, size_t count,
                                  weftDataType_t type, int* index);
/* Lays out the buckets and checks the layout against every other rank's (an
 * all-gather on the communicator: every rank calls it at the same point).
 * The first weftBucketerGradient/MarkReady calls it when the program did not. */
weftResult_t weftBucketerFinalize(weftBucketer_t bucketer);
/* The gradient buffer of a parameter (view mode: its view, zeroed at
 * finalize; copy-in: the registered pointer). */
weftResult_t weftBucketerGradient(weftBucketer_t bucketer, int index, void** grad);
/* The parameter's gradient is complete for this iteration. */
weftResult_t weftBucketerMarkReady(weftBucketer_t bucketer, int index);
/* Waits for every bucket of this iteration and returns the first error. */
weftResult_t weftBucketerFinish(weftBucketer_t bucketer);
/* The figures of the last finished iteration. */
weftResult_t weftBucketerStats(weftBucketer_t bucketer, weftBucketStats_t* stats);
weftResult_t weftBucketerBucketCount(weftBucketer_t bucketer, int* buckets);
weftResult_t weftBucketerBucketInfo(weftBucketer_t bucketer, int bucket, weftBucketInfo_t* info);
/* The bucket a parameter is in, and its element offset there. */
weftResult_t weftBucketerParamLocation(weftBucketer_t bucketer, int index, int* bucket, size_t* offset);
/* Waits for launched buckets, then frees the bucketer (not the communicator). */
weftResult_t weftBucketerDestroy(weftBucketer_t bucketer);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // WEFT_BUCKET_H_
