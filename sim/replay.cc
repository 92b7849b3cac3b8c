#include "sim/replay.h"

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <tuple>

#include "core/logging.h"
#include "core/types.h"
#include "exec/geometry.h"
#include "exec/trace.h"

namespace weft::sim {
namespace {

struct Message {
  double arrival = 0;
};

// A connector's FIFO: messages on their way, and the times at which its
// slots became free (nSlots of them at the start).
struct Fifo {
  std::deque<Message> queue;
  std::deque<double> freeSlots;
};

struct Link {
  double busyUntil = 0;
  double busyMicros = 0;
  double bytes = 0;
};

struct Cursor {
  size_t next = 0;  // index into the channel's steps repeated once per slice
  double time = 0;  // when the channel's previous step ended
};

class Replay {
 public:
  Replay(const PlanSet& plans, size_t count, weftDataType_t type, const MachineModel& machine,
         const std::string& tracePath)
      : plans_(plans), machine_(machine), n_(plans.front().nranks), nChannels_(plans.front().nChannels) {
    if (!tracePath.empty())
      for (int r = 0; r < n_; ++r) tracers_.push_back(std::make_unique<Tracer>(tracePath, r, n_));
    op_.count = count;
    op_.type = type;
    op_.plan = &plans.front();
    geometry_ = geometryFor(op_, plans.front(), machine.slotBytes);
    nodeOf_ = machine.nodeOfRank;
    if (nodeOf_.size() != static_cast<size_t>(n_)) nodeOf_.assign(static_cast<size_t>(n_), 0);
    cursors_.assign(static_cast<size_t>(n_) * nChannels_, Cursor{});
    coreFree_.assign(static_cast<size_t>(n_) * (machine.enginePerChannel ? nChannels_ : 1), 0.0);
  }

  Status run(ReplayResult* result) {
    size_t iterations = geometry_.iterations;
    for (;;) {
      bool progressed = false, finished = true;
      for (int r = 0; r < n_; ++r)
        for (int c = 0; c < nChannels_; ++c) {
          std::span<const Step> steps = plans_[static_cast<size_t>(r)].channel(c);
          Cursor& cursor = cursors_[static_cast<size_t>(r) * nChannels_ + c];
          while (cursor.next < steps.size() * iterations) {
            size_t iteration = cursor.next / steps.size();
            const Step& step = steps[cursor.next % steps.size()];
            if (!tryStep(r, c, step, iteration, &cursor)) break;
            ++cursor.next;
            progressed = true;
          }
          if (cursor.next < steps.size() * iterations) finished = false;
        }
      if (finished) break;
      if (!progressed) return deadlock();
    }
    double end = 0;
    for (const Cursor& cursor : cursors_) end = std::max(end, cursor.time);
    for (size_t r = 0; r < tracers_.size(); ++r) {
      double rankEnd = 0;
      for (int c = 0; c < nChannels_; ++c) rankEnd = std::max(rankEnd, cursors_[r * nChannels_ + c].time);
      const Plan& plan = plans_[r];
      tracers_[r]->event(
          0, collectiveName(plan.collective), 0, static_cast<uint64_t>(rankEnd * 1e3),
          format("\"count\": %zu, \"type\": \"%s\", \"root\": %d, \"algorithm\": \"%s\", "
                 "\"channels\": %d, \"simulated\": true",
                 op_.count, typeName(op_.type), plan.root, algorithmName(plan.algorithm), plan.nChannels));
    }
    result->micros = end;
    result->messages = messages_;
    double busiest = -1;
    for (const auto& [key, link] : links_)
      if (link.busyMicros > busiest) {
        busiest = link.busyMicros;
        result->busiestLinkBytes = link.bytes;
        bool network = std::get<0>(key) != 0;
        result->busiestLink = format("%s %d -> %s %d", network ? "node" : "rank", std::get<1>(key),
                                     network ? "node" : "rank", std::get<2>(key));
        result->busiestLinkUtilisation = end > 0 ? link.busyMicros / end : 0;
      }
    return Status::ok();
  }

 private:
  Fifo& fifo(int from, int to, int channel) {
    auto [it, made] = fifos_.try_emplace({from, to, channel});
    if (made) it->second.freeSlots.assign(static_cast<size_t>(machine_.nSlots), 0.0);
    return it->second;
  }

  double copyMicros(double bytes) const { return bytes / (machine_.copyGBps * 1e3); }
  double reduceMicros(double bytes) const { return bytes / (machine_.reduceGBps * 1e3); }

  // Runs step if what it waits for is there; false otherwise.
  bool tryStep(int rank, int channel, const Step& step, size_t iteration, Cursor* cursor) {
    const Plan& plan = plans_[static_cast<size_t>(rank)];
    size_t bytes = 0;
    if (stepIsToken(step.op)) {
      // Tokens move once per channel, in its first slice (or last).
      if (iteration != (step.onLastSlice ? geometry_.iterations - 1 : 0)) return true;
    } else {
      size_t lo = 0, hi = 0;
      geometry_.slice(channel, iteration, step.block, &lo, &hi);
      if (hi <= lo && !plan.emptyMessages) return true;  // nothing of the block in this slice, on every rank
      bytes = hi > lo ? (hi - lo) * geometry_.typeBytes : 0;
    }
    bool receives = stepReceives(step.op), fansIn = stepFansIn(step), sends = stepSends(step.op);
    Fifo* in1 = receives ? &fifo(step.recvPeer, rank, channel) : nullptr;
    Fifo* in2 = fansIn ? &fifo(step.recvPeer2, rank, channel) : nullptr;
    Fifo* out = sends ? &fifo(rank, step.sendPeer, channel) : nullptr;
    if ((in1 && in1->queue.empty()) || (in2 && in2->queue.empty()) || (out && out->freeSlots.empty())) return false;

    size_t engine = machine_.enginePerChannel ? static_cast<size_t>(rank) * nChannels_ + channel : rank;
    double start = std::max(cursor->time, coreFree_[engine]);
    if (in1) start = std::max(start, in1->queue.front().arrival);
    if (in2) start = std::max(start, in2->queue.front().arrival);
    if (out) start = std::max(start, out->freeSlots.front());
    double work = machine_.stepMicros, b = static_cast<double>(bytes);
    switch (step.op) {
      case StepOp::Send:
      case StepOp::Recv:
      case StepOp::Copy: work += copyMicros(b); break;
      case StepOp::RecvSend: work += 2 * copyMicros(b); break;
      case StepOp::RecvReduceSend:
      case StepOp::RecvReduceCopy:
      case StepOp::LocalReduce: work += reduceMicros(b); break;
      case StepOp::RecvReduceCopySend: work += reduceMicros(b) + copyMicros(b); break;
      case StepOp::Notify:
      case StepOp::Await: break;
    }
    if (fansIn) work += reduceMicros(b);
    double end = start + work;
    if (!tracers_.empty())
      tracers_[static_cast<size_t>(rank)]->event(
          1 + channel, stepOpName(step.op), static_cast<uint64_t>(start * 1e3), static_cast<uint64_t>(end * 1e3),
          format("\"bytes\": %zu, \"block\": %d, \"slice\": %zu, \"recvPeer\": %d, \"sendPeer\": %d", bytes, step.block,
                 iteration, step.recvPeer, step.sendPeer));
    cursor->time = end;
    coreFree_[engine] = end;
    for (Fifo* f : {in1, in2})
      if (f != nullptr) {
        f->queue.pop_front();
        f->freeSlots.push_back(end);
      }
    if (out) {
      out->freeSlots.pop_front();
      bool network = nodeOf_[static_cast<size_t>(rank)] != nodeOf_[static_cast<size_t>(step.sendPeer)];
      const LinkModel& model = network ? machine_.network : machine_.intraNode;
      auto key =
          network ? std::make_tuple(1, nodeOf_[static_cast<size_t>(rank)], nodeOf_[static_cast<size_t>(step.sendPeer)])
                  : std::make_tuple(0, rank, static_cast<int>(step.sendPeer));
      Link& link = links_[key];
      double transfer = b / (model.gbps * 1e3);
      double begin = bytes > 0 ? std::max(end, link.busyUntil) : end;  // a header alone waits for no link
      link.busyUntil = std::max(link.busyUntil, begin + transfer);
      link.busyMicros += transfer;
      link.bytes += b;
      out->queue.push_back({begin + transfer + model.latencyMicros});
      ++messages_;
    }
    return true;
  }

  Status deadlock() const {
    std::string where;
    for (int r = 0; r < n_; ++r)
      for (int c = 0; c < nChannels_; ++c) {
        std::span<const Step> steps = plans_[static_cast<size_t>(r)].channel(c);
        const Cursor& cursor = cursors_[static_cast<size_t>(r) * nChannels_ + c];
        if (cursor.next < steps.size() * geometry_.iterations)
          where += format(" rank %d channel %d at %s;", r, c, stepOpName(steps[cursor.next % steps.size()].op));
      }
    return WEFT_ERROR(weftInternalError, "the replay of %s/%s deadlocked:%s", collectiveName(plans_.front().collective),
                      algorithmName(plans_.front().algorithm), where.c_str());
  }

  const PlanSet& plans_;
  const MachineModel& machine_;
  int n_;
  int nChannels_;
  OpDesc op_;
  Geometry geometry_;
  std::vector<int> nodeOf_;
  std::vector<Cursor> cursors_;
  std::vector<double> coreFree_;
  std::map<std::tuple<int, int, int>, Fifo> fifos_;
  std::map<std::tuple<int, int, int>, Link> links_;  // (network?, from, to)
  uint64_t messages_ = 0;
  std::vector<std::unique_ptr<Tracer>> tracers_;  // written when the replay ends
};

}  // namespace

Status replay(const PlanSet& plans, size_t count, weftDataType_t type, const MachineModel& machine,
              ReplayResult* result, const std::string& tracePath) {
  if (plans.empty() || static_cast<int>(plans.size()) != plans.front().nranks)
    return WEFT_ERROR(weftInvalidArgument, "replay: %zu rank programs for nranks=%d", plans.size(),
                      plans.empty() ? 0 : plans.front().nranks);
  if (machine.nSlots < 1 || machine.slotBytes < 64 || machine.copyGBps <= 0 || machine.reduceGBps <= 0 ||
      machine.intraNode.gbps <= 0 || machine.network.gbps <= 0)
    return WEFT_ERROR(weftInvalidArgument, "replay: the machine model needs slots, and rates above 0");
  *result = ReplayResult{};
  return Replay(plans, count, type, machine, tracePath).run(result);
}

}  // namespace weft::sim
