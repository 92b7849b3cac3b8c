// WEFT_TRACE_FILE: a Chrome-trace (Perfetto) JSON of what the host executor
// ran. Each collective is one event on lane 0 (its call: collective, count,
// type, op, algorithm, channels); each data step of each channel is one event
// on lane 1 + channel (its kind, bytes, peers). Timestamps are microseconds
// of the monotonic clock, so the files of several ranks line up on one
// machine. Off unless the variable is set: the executor then tests one null
// pointer per step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace weft {

class Tracer {
 public:
  // path: "%r" becomes the rank; otherwise, with more than one rank, ".<rank>"
  // is appended so that ranks do not share a file.
  Tracer(const std::string& path, int rank, int nranks);
  ~Tracer();  // writes the file
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  void event(int lane, std::string name, uint64_t startNanos, uint64_t endNanos, std::string args);
  const std::string& path() const { return path_; }
  // The file's text so far (what the destructor writes).
  std::string json() const;

  // Events beyond this many are counted, not kept (a long job's trace stays
  // bounded; the file says how many were dropped).
  static constexpr size_t kMaxEvents = 1u << 20;

 private:
  struct Event {
    int lane;
    std::string name;
    uint64_t start, end;
    std::string args;  // a JSON object's members, without the braces
  };
  std::string path_;
  int rank_;
  mutable std::mutex mutex_;
  std::vector<Event> events_;
  size_t dropped_ = 0;
};

}  // namespace weft
