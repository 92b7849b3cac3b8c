// The phases of a two-rank ring all-reduce on host memory, run as tight
// stand-alone loops: what each costs on this machine when nothing else (no
// FIFO, no peer, no progress engine) is in the way. Two threads, one per
// core as the perf binaries' ranks are, each walk their own buffers a slot at
// a time doing exactly what one rank's ring steps do:
//
//   send    memcpy  input block 0 slice -> outgoing slot          (read memory)
//   reduce  reduce  input block 1 slice + incoming slot -> slot   (read memory)
//   stream  stream  reduced slot -> output block 1                (write memory)
//   recv    stream  incoming slot -> output block 0               (write memory)
//
// The "incoming" slot is one the other thread wrote in the previous slice
// (handed over by a flag), so the cross-core cache transfer is measured too.
// Each phase is timed on its own, then the whole sequence per slice, then the
// same sequence with the reduce writing the output directly (the fused
// variant: one pass instead of reduce-then-copy).
//
// With --prefetch, instead: the send phase's copy from memory into a slot,
// written as a plain loop with a software prefetch of the source at each
// distance from 0 (none) to 16 KiB, both threads at once: how kPrefetchBytes
// was chosen.
//   datapath_probe [--prefetch] [bytes per rank, default 256 MiB] [slot bytes, default 128 KiB]
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "exec/copy.h"
#include "exec/reduce.h"

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

struct Rank {
  std::vector<char> input, output;
  std::vector<char> slots;  // the FIFO this rank's peer writes and this rank reads
};

enum class Variant { Send, Reduce, Stream, Whole, Fused };

const char* name(Variant v) {
  switch (v) {
    case Variant::Send: return "send (memcpy input -> slot)";
    case Variant::Reduce: return "reduce (input + peer slot -> slot)";
    case Variant::Stream: return "stream (slot -> output, non-temporal)";
    case Variant::Whole: return "whole ring sequence per slice";
    case Variant::Fused: return "whole, reduce fused with its output store";
  }
  return "";
}

constexpr int kSlots = 8;
size_t kChunk = 4096;

// One rank's pass over its buffers; returns seconds.
double pass(Variant v, Rank& self, Rank& peer, size_t bytes, size_t slot, std::atomic<size_t>* mine,
            std::atomic<size_t>* theirs) {
  weft::ReduceFn reduce = weft::reduceFunction(weftFloat32, weftSum);
  size_t half = bytes / 2;
  size_t slices = half / slot;
  std::vector<char> scratch(slot);
  double start = now();
  for (size_t i = 0; i < slices; ++i) {
    char* out = peer.slots.data() + (i % kSlots) * slot;       // what the peer will read
    const char* in = self.slots.data() + (i % kSlots) * slot;  // what the peer wrote
    size_t off = i * slot;
    switch (v) {
      case Variant::Send: memcpy(out, self.input.data() + off, slot); break;
      case Variant::Reduce: reduce(scratch.data(), self.input.data() + half + off, in, slot / 4); break;
      case Variant::Stream: weft::copyStreaming(self.output.data() + half + off, in, slot); break;
      case Variant::Whole:
      case Variant::Fused:
        memcpy(out, self.input.data() + off, slot);
        mine->store(i + 1, std::memory_order_release);
        while (theirs->load(std::memory_order_acquire) < i + 1) {
        }
        if (v == Variant::Whole) {
          reduce(scratch.data(), self.input.data() + half + off, in, slot / 4);
          weft::copyStreaming(self.output.data() + half + off, scratch.data(), slot);
        } else {
          for (size_t k = 0; k < slot; k += kChunk) {
            reduce(scratch.data() + k, self.input.data() + half + off + k, in + k, kChunk / 4);
            weft::copyStreaming(self.output.data() + half + off + k, scratch.data() + k, kChunk);
          }
        }
        weft::copyStreaming(self.output.data() + off, in, slot);
        break;
    }
  }
  weft::streamingFence();
  return now() - start;
}

// The send phase's copy with a prefetch `distance` bytes ahead (0: none).
void copyAhead(char* slot, size_t slotBytes, const char* in, size_t bytes, size_t distance) {
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    if (distance != 0)
      for (int line = 0; line < 4; ++line) __builtin_prefetch(in + i + distance + 64 * line, 0, 1);
    memcpy(slot + i % slotBytes, in + i, 256);
  }
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

}  // namespace

int main(int argc, char** argv) {
  bool sweep = argc > 1 && strcmp(argv[1], "--prefetch") == 0;
  if (sweep) {
    --argc;
    ++argv;
  }
  size_t bytes = argc > 1 ? strtoull(argv[1], nullptr, 0) : (size_t{256} << 20);
  size_t slot = argc > 2 ? strtoull(argv[2], nullptr, 0) : (size_t{128} << 10);
  if (argc > 3) kChunk = strtoull(argv[3], nullptr, 0);
  int cpus = static_cast<int>(std::thread::hardware_concurrency());
  if (sweep) {
    std::vector<char> inputs[2], slots[2];
    for (int r = 0; r < 2; ++r) {
      inputs[r].assign(bytes + 65536, 1);
      slots[r].assign(slot, 0);
    }
    printf("# datapath_probe --prefetch: 2 threads each copy %zu bytes from memory into a %zu-byte slot\n", bytes,
           slot);
    printf("# %-12s %14s\n", "distance", "GB/s per core");
    for (size_t distance : {0, 512, 1024, 2048, 4096, 8192, 16384}) {
      double best = 1e30;
      for (int trial = 0; trial < 3; ++trial) {
        double seconds[2] = {0, 0};
        auto run = [&](int r) {
          pin(cpus > 1 ? r : 0);
          double start = now();
          copyAhead(slots[r].data(), slot, inputs[r].data(), bytes, distance);
          seconds[r] = now() - start;
        };
        std::thread peer(run, 1);
        run(0);
        peer.join();
        best = std::min(best, std::max(seconds[0], seconds[1]));
      }
      printf("  %-12zu %14.2f\n", distance, static_cast<double>(bytes) / best / 1e9);
    }
    return 0;
  }
  Rank ranks[2];
  for (Rank& r : ranks) {
    r.input.assign(bytes, 0);
    r.output.assign(bytes, 0);
    r.slots.assign(kSlots * slot, 0);
  }
  printf("# datapath_probe: 2 threads on cpus 0 and %d, %zu bytes per rank, %zu-byte slots, kernels %s\n",
         cpus > 1 ? 1 : 0, bytes, slot, weft::reduceKernels().isa);
  printf("# %-44s %10s %12s\n", "phase", "ms/rank", "GB/s");
  for (Variant v : {Variant::Send, Variant::Reduce, Variant::Stream, Variant::Whole, Variant::Fused}) {
    double best = 1e30;
    for (int trial = 0; trial < 3; ++trial) {
      std::atomic<size_t> flags[2];
      flags[0] = 0;
      flags[1] = 0;
      double seconds[2] = {0, 0};
      std::thread peer([&] {
        pin(cpus > 1 ? 1 : 0);
        seconds[1] = pass(v, ranks[1], ranks[0], bytes, slot, &flags[1], &flags[0]);
      });
      pin(0);
      seconds[0] = pass(v, ranks[0], ranks[1], bytes, slot, &flags[0], &flags[1]);
      peer.join();
      best = std::min(best, std::max(seconds[0], seconds[1]));
    }
    // GB/s: for one phase, the bytes it moves per rank (half the buffer); for
    // the whole sequence, the all-reduce's algbw (bytes per rank / time).
    bool whole = v == Variant::Whole || v == Variant::Fused;
    double moved = whole ? static_cast<double>(bytes) : static_cast<double>(bytes / 2);
    printf("  %-44s %10.2f %12.2f\n", name(v), best * 1e3, moved / best / 1e9);
  }
  return 0;
}
