#include "exec/trace.h"

#include <cstdio>

#include "core/logging.h"
#include "core/status.h"

namespace weft {

Tracer::Tracer(const std::string& path, int rank, int nranks) : rank_(rank) {
  size_t at = path.find("%r");
  if (at != std::string::npos)
    path_ = path.substr(0, at) + std::to_string(rank) + path.substr(at + 2);
  else
    path_ = nranks > 1 ? path + "." + std::to_string(rank) : path;
}

Tracer::~Tracer() {
  FILE* file = fopen(path_.c_str(), "w");
  if (file == nullptr) {
    WEFT_WARN("rank %d: WEFT_TRACE_FILE: cannot write %s", rank_, path_.c_str());
    return;
  }
  std::string text = json();
  fwrite(text.data(), 1, text.size(), file);
  fclose(file);
}

void Tracer::event(int lane, std::string name, uint64_t startNanos, uint64_t endNanos, std::string args) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (events_.size() >= kMaxEvents) {
    ++dropped_;
    return;
  }
  events_.push_back({lane, std::move(name), startNanos, endNanos, std::move(args)});
}

std::string Tracer::json() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out = "{\"displayTimeUnit\": \"ns\", \"otherData\": {\"rank\": " + std::to_string(rank_) +
                    ", \"droppedEvents\": " + std::to_string(dropped_) + "},\n\"traceEvents\": [\n";
  out += format("{\"ph\": \"M\", \"name\": \"process_name\", \"pid\": %d, \"args\": {\"name\": \"rank %d\"}}", rank_,
                rank_);
  std::vector<bool> named;
  for (const Event& e : events_) {
    if (static_cast<size_t>(e.lane) >= named.size()) named.resize(static_cast<size_t>(e.lane) + 1, false);
    if (!named[static_cast<size_t>(e.lane)]) {
      named[static_cast<size_t>(e.lane)] = true;
      std::string lane = e.lane == 0 ? "calls" : "channel " + std::to_string(e.lane - 1);
      out += format(
          ",\n{\"ph\": \"M\", \"name\": \"thread_name\", \"pid\": %d, \"tid\": %d, \"args\": {\"name\": \"%s\"}}",
          rank_, e.lane, lane.c_str());
    }
    out += format(
        ",\n{\"ph\": \"X\", \"pid\": %d, \"tid\": %d, \"name\": \"%s\", \"ts\": %.3f, \"dur\": %.3f, "
        "\"args\": {%s}}",
        rank_, e.lane, e.name.c_str(), static_cast<double>(e.start) / 1e3, static_cast<double>(e.end - e.start) / 1e3,
        e.args.c_str());
  }
  out += "\n]}\n";
  return out;
}

}  // namespace weft
