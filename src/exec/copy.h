// Copies into a collective's output. Large outputs are written with
// non-temporal (streaming) stores: an ordinary store first reads the line it
// writes (read-for-ownership), which for an output far larger than the caches
// adds a whole extra pass over memory and buys nothing, since the output is
// not read again by this rank.
#pragma once

#include <cstddef>

namespace weft {

// Outputs at least this large are streamed.
constexpr size_t kStreamingMinBytes = 8u << 20;

void copyStreaming(void* dst, const void* src, size_t bytes);
// memcpy with the source read a prefetch distance ahead (kPrefetchBytes):
// for a source in memory (a large input) copied into a slot that stays in
// cache.
void copyPrefetching(void* dst, const void* src, size_t bytes);
// Orders streaming stores before the operation is reported complete.
void streamingFence();

}  // namespace weft
