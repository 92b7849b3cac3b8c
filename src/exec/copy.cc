#include "exec/copy.h"

#include "exec/reduce.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace weft {

#if defined(__x86_64__)
// 32-byte streaming stores: measured 44.5 GB/s written against 42.7 for the
// 16-byte ones (and 33 for memcpy) into a buffer larger than the caches.
__attribute__((target("avx2"))) static void streamAvx2(char* out, const char* in, size_t blocks) {
  for (size_t i = 0; i < blocks; ++i) {
    __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in));
    __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 32));
    _mm256_stream_si256(reinterpret_cast<__m256i*>(out), a);
    _mm256_stream_si256(reinterpret_cast<__m256i*>(out + 32), b);
    in += 64;
    out += 64;
  }
}

// 64-byte streaming stores, one whole line each: 19.4 GB/s written per core
// against 18.2 for the 32-byte ones, two cores at once, on a Xeon (Sapphire
// Rapids) VM.
__attribute__((target("avx512f"))) static void streamAvx512(char* out, const char* in, size_t blocks) {
  for (size_t i = 0; i < blocks; ++i) {
    _mm512_stream_si512(reinterpret_cast<__m512i*>(out), _mm512_loadu_si512(in));
    in += 64;
    out += 64;
  }
}

static bool haveAvx512() {
  static const bool kHave = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return kHave;
}

static bool haveAvx2() {
  static const bool kHave = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return kHave;
}
#endif

void copyStreaming(void* dst, const void* src, size_t bytes) {
#if defined(__x86_64__)
  char* out = static_cast<char*>(dst);
  const char* in = static_cast<const char*>(src);
  size_t head = (64 - (reinterpret_cast<uintptr_t>(out) & 63)) & 63;
  if (bytes < 256 || head > bytes) {
    memcpy(out, in, bytes);
    return;
  }
  memcpy(out, in, head);
  out += head;
  in += head;
  bytes -= head;
  size_t vectors = bytes / 64;
  if (haveAvx512()) {
    streamAvx512(out, in, vectors);
    in += vectors * 64;
    out += vectors * 64;
    vectors = 0;
  } else if (haveAvx2()) {
    streamAvx2(out, in, vectors);
    in += vectors * 64;
    out += vectors * 64;
    vectors = 0;
  }
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

void copyPrefetching(void* dst, const void* src, size_t bytes) {
  char* out = static_cast<char*>(dst);
  const char* in = static_cast<const char*>(src);
  size_t done = 0;
  for (; done + 256 <= bytes; done += 256) {
    for (int line = 0; line < 4; ++line) __builtin_prefetch(in + done + kPrefetchBytes + 64 * line, 0, 1);
    memcpy(out + done, in + done, 256);  // a fixed size: inlined as vector moves
  }
  memcpy(out + done, in + done, bytes - done);
}

void streamingFence() {
#if defined(__x86_64__)
  _mm_sfence();
#endif
}

}  // namespace weft
