// The portability layer of weft's device code: everything the plan
// interpreter, the connector protocols and the element kernels need from the
// machine they run on, in one place, so that the same source compiles twice:
// with nvcc for the GPU (a thread block per channel, its threads as lanes),
// and with the host compiler for the emulated device (a block runs as one
// host thread: one lane, barriers that have nothing to wait for, flags read
// and written with acquire/release atomics so that the host's memory model
// and ThreadSanitizer see the same ordering the GPU's fences give).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define WEFT_HD __host__ __device__ __forceinline__
#define WEFT_DEVICE_CODE __device__
#else
#define WEFT_HD inline
#define WEFT_DEVICE_CODE
#endif
#if !defined(__CUDA_ARCH__)
#include <sched.h>

#include <chrono>
#endif

namespace weft::device {

#if defined(__CUDA_ARCH__)

WEFT_DEVICE_CODE inline int laneIndex() { return static_cast<int>(threadIdx.x); }
WEFT_DEVICE_CODE inline int laneCount() { return static_cast<int>(blockDim.x); }
WEFT_DEVICE_CODE inline int blockIndex() { return static_cast<int>(blockIdx.x); }
WEFT_DEVICE_CODE inline void blockBarrier() { __syncthreads(); }
// Makes this thread's earlier writes visible to peers on other devices and
// to the host before a later flag store.
WEFT_DEVICE_CODE inline void fenceSystem() { __threadfence_system(); }
WEFT_DEVICE_CODE inline uint64_t loadFlag(const uint64_t* p) {
  uint64_t v;
  asm volatile("ld.volatile.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}
// A flag store after the data it announces: fenced first.
WEFT_DEVICE_CODE inline void storeFlag(uint64_t* p, uint64_t v) {
  __threadfence_system();
  asm volatile("st.volatile.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}
// The low-latency protocol's word: data and flag in one 8-byte store.
WEFT_DEVICE_CODE inline uint64_t loadWord(const uint64_t* p) { return loadFlag(p); }
WEFT_DEVICE_CODE inline void storeWord(uint64_t* p, uint64_t v) {
  asm volatile("st.volatile.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}
WEFT_DEVICE_CODE inline uint64_t clockNanos() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
WEFT_DEVICE_CODE inline void spinPause(uint64_t) { __nanosleep(64); }
WEFT_DEVICE_CODE inline uint32_t loadFlag32(const uint32_t* p) {
  return *reinterpret_cast<const volatile uint32_t*>(p);
}
// The first fault wins: 0 becomes v, anything else stays.
WEFT_DEVICE_CODE inline bool claimWord32(uint32_t* p, uint32_t v) { return atomicCAS(p, 0u, v) == 0u; }
// Adds v, after this thread's earlier writes; returns the value before.
WEFT_DEVICE_CODE inline uint64_t addCounter(uint64_t* p, uint64_t v) {
  __threadfence_system();
  return atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}
// True on every lane when any lane passes true (a barrier too).
WEFT_DEVICE_CODE inline bool blockAny(bool v) { return __syncthreads_or(v) != 0; }
// 16 bytes in one load and one store, where both pointers are aligned.
WEFT_DEVICE_CODE inline void copy16(void* dst, const void* src) {
  *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
}

#else  // the emulated device

struct EmulatedBlock {
  int index = 0;
};
// The block this host thread runs (set by the emulated launch).
inline thread_local EmulatedBlock currentBlock;

inline int laneIndex() { return 0; }
inline int laneCount() { return 1; }
inline int blockIndex() { return currentBlock.index; }
inline void blockBarrier() {}
inline void fenceSystem() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline uint64_t loadFlag(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void storeFlag(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
// Data and flag travel in one word, so no ordering is needed beyond the
// word's own atomicity.
inline uint64_t loadWord(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
inline void storeWord(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
inline uint64_t clockNanos() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}
// Blocks are host threads, usually more of them than cores: after a short
// spin a waiting block gives its core to the one it waits for.
inline void spinPause(uint64_t spins) {
  if (spins >= 64) {
    sched_yield();
    return;
  }
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
inline void copy16(void* dst, const void* src) { memcpy(dst, src, 16); }
inline uint32_t loadFlag32(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline bool claimWord32(uint32_t* p, uint32_t v) {
  uint32_t expected = 0;
  return __atomic_compare_exchange_n(p, &expected, v, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}
inline uint64_t addCounter(uint64_t* p, uint64_t v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
inline bool blockAny(bool v) { return v; }

#endif

}  // namespace weft::device
