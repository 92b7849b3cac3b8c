#include "exec/copy.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

namespace weft {

void copyStreaming(void* dst, const void* src, size_t bytes) {
#if defined(__x86_64__)
  char* out = static_cast<char*>(dst);
  const char* in = static_cast<const char*>(src);
  size_t head = (16 - (reinterpret_cast<uintptr_t>(out) & 15)) & 15;
  if (bytes < 256 || head > bytes) {
    memcpy(out, in, bytes);
    return;
  }
  memcpy(out, in, head);
  out += head;
  in += head;
  bytes -= head;
  size_t vectors = bytes / 64;
  for (size_t i = 0; i < vectors; ++i) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16));
    __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 32));
    __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(out), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 48), d);
    in += 64;
    out += 64;
  }
  memcpy(out, in, bytes % 64);
#else
  memcpy(dst, src, bytes);
#endif
}

void streamingFence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

}  // namespace weft
