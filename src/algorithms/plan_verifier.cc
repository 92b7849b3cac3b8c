#include "algorithms/plan_verifier.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include <deque>
#include <map>
#include <optional>
#include <span>
#include <tuple>
#include <utility>
#include <vector>

namespace weft {
namespace {

constexpr int kTokenBlock = -2;  // what a token carries instead of a block

struct Value {
  int block = -1;
  int iteration = -1;
  std::vector<uint16_t> counts;  // contributions per rank
};

// A slice of memory: (space, chunk, iteration). Input and output are
// separate spaces, or one space in place (input chunk j and output chunk j
// are the same memory: the own-block variants of all-gather, reduce-scatter,
// gather and scatter included). Scratch is one slot reused by every slice.
enum Space { kInputSpace, kOutputSpace, kScratchSpace };
using Loc = std::tuple<int, int, int>;

// A message in a FIFO: its value, the sender's vector clock (causal runs),
// and for one sent by address, the loan of the sender's memory that the
// receiver reads when it takes the message.
struct Message {
  Value value;
  int loan = -1;
  std::vector<uint32_t> clock;
};

// Memory lent by address: which rank reads it, and when it did (the
// receiver's own clock after the taking step; 0 until then).
struct Loan {
  int owner = -1;
  int receiver = -1;
  uint32_t takenAt = 0;
};

struct RankState {
  std::map<Loc, Value> memory;            // what has been written (input holds the rank's own data until overwritten)
  std::map<Loc, std::vector<int>> loans;  // slices lent by address and not yet known to be read
  std::vector<uint32_t> clock;            // causal runs: what this rank knows of every rank's progress
  StepWalk walk;                          // the next step, and its slice
};

class Verifier {
 public:
  Verifier(const PlanSet& plans, int channel, int fifoSlots, int iterations, bool inPlace)
      : plans_(plans),
        plan_(plans.front()),
        channel_(channel),
        fifoSlots_(fifoSlots),
        iterations_(iterations),
        inPlace_(inPlace),
        causal_(plans.front().nranks <= kCausalMaxRanks) {}

  Status run() {
    int n = plan_.nranks;
    ranks_.resize(static_cast<size_t>(n));
    if (causal_)
      for (RankState& state : ranks_) state.clock.assign(static_cast<size_t>(n), 0);
    for (int r = 0; r < n; ++r)
      ranks_[r].walk = StepWalk(plans_[r].channel(channel_).size(), static_cast<size_t>(iterations_));
    size_t total = 0;
    for (int r = 0; r < n; ++r) total += plans_[r].channel(channel_).size() * iterations_;
    size_t done = 0;
    while (done < total) {
      bool progressed = false;
      for (int r = 0; r < n; ++r) {
        std::span<const Step> steps = plans_[r].channel(channel_);
        RankState& state = ranks_[r];
        while (!state.walk.done(steps.size())) {
          int iteration = static_cast<int>(state.walk.slice);
          const Step& step = steps[state.walk.step];
          std::optional<bool> ready = canRun(r, step, iteration);
          if (!ready.has_value()) return error_;
          if (!*ready) break;
          WEFT_CHECK(execute(r, step, iteration));
          state.walk.advance(steps.data(), steps.size(), static_cast<size_t>(iterations_));
          ++done;
          progressed = true;
        }
      }
      if (!progressed) return deadlock();
    }
    for (const auto& [key, queue] : fifos_)
      if (!queue.empty())
        return fail("rank %d left %zu unreceived message(s) for rank %d", std::get<0>(key), queue.size(),
                    std::get<1>(key));
    return checkOutputs();
  }

 private:
  using FifoKey = std::tuple<int, int>;  // from, to

  int ownBlock(int rank) const { return plan_.nBlocks == 1 ? 0 : rank; }

  static const char* bufferName(BufferId id) {
    return id == BufferId::Input ? "input" : id == BufferId::Output ? "output" : "scratch";
  }

  Loc locate(ChunkRef ref, int iteration) const {
    if (ref.buffer == BufferId::Scratch) return {kScratchSpace, ref.chunk, 0};
    int space = ref.buffer == BufferId::Input && !inPlace_ ? kInputSpace : kOutputSpace;
    return {space, ref.chunk, iteration};
  }

  // What rank's input chunk holds before anything writes it.
  Value original(int rank, int chunk, int iteration) const {
    Value v;
    v.block = chunk;
    v.iteration = iteration;
    v.counts.assign(static_cast<size_t>(plan_.nranks), 0);
    v.counts[rank] = 1;
    return v;
  }

  bool holdsInput(int rank, int chunk) const {
    if (plan_.inputShape == BufferShape::OwnBlock) return chunk == ownBlock(rank);
    return chunk >= 0 && chunk < plan_.nBlocks;
  }

  Status fail(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    std::string prefix = format("plan %s/%s nranks=%d root=%d channel %d: ", collectiveName(plan_.collective),
                                algorithmName(plan_.algorithm), plan_.nranks, plan_.root, channel_);
    char text[512];
    va_list args;
    va_start(args, fmt);
    vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    return Status(weftInternalError, prefix + text);
  }

  bool validPeer(int peer, int self) const { return peer >= 0 && peer < plan_.nranks && peer != self; }

  // The executor runs a token once per channel, in one slice.
  bool tokenIdle(const Step& step, int iteration) const {
    return stepIsToken(step.op) && iteration != (step.onLastSlice ? iterations_ - 1 : 0);
  }

  std::optional<bool> canRun(int rank, const Step& step, int iteration) {
    if (tokenIdle(step, iteration)) return true;
    if (stepReceives(step.op)) {
      if (!validPeer(step.recvPeer, rank)) {
        error_ = fail("rank %d: %s receives from invalid peer %d", rank, stepOpName(step.op), step.recvPeer);
        return std::nullopt;
      }
      if (fifos_[{step.recvPeer, rank}].empty()) return false;
    }
    if (stepFansIn(step)) {
      bool reducing = step.op == StepOp::RecvReduceSend || step.op == StepOp::RecvReduceCopy ||
                      step.op == StepOp::RecvReduceCopySend;
      if (!reducing) {
        error_ = fail("rank %d: %s cannot fan in (only reducing steps that receive can)", rank, stepOpName(step.op));
        return std::nullopt;
      }
      if (!validPeer(step.recvPeer2, rank) || step.recvPeer2 == step.recvPeer) {
        error_ = fail("rank %d: %s fans in from invalid peer %d (first peer %d)", rank, stepOpName(step.op),
                      step.recvPeer2, step.recvPeer);
        return std::nullopt;
      }
      if (fifos_[{step.recvPeer2, rank}].empty()) return false;
    }
    if (stepSends(step.op)) {
      if (!validPeer(step.sendPeer, rank)) {
        error_ = fail("rank %d: %s sends to invalid peer %d", rank, stepOpName(step.op), step.sendPeer);
        return std::nullopt;
      }
      if (static_cast<int>(fifos_[{rank, step.sendPeer}].size()) >= fifoSlots_) return false;
    }
    return true;
  }

  // The executor has as many one-slot scratch chunks as the plan declares.
  Status checkScratch(int rank, ChunkRef ref) {
    if (ref.buffer == BufferId::Scratch && (ref.chunk < 0 || ref.chunk >= plans_[rank].scratchChunks))
      return fail("rank %d uses scratch chunk %d, but its plan declares %d", rank, ref.chunk,
                  plans_[rank].scratchChunks);
    return Status::ok();
  }

  Status read(int rank, ChunkRef ref, int iteration, Value* out) {
    WEFT_CHECK(checkScratch(rank, ref));
    if (ref.buffer == BufferId::None) return fail("rank %d reads no buffer", rank);
    RankState& state = ranks_[rank];
    auto it = state.memory.find(locate(ref, iteration));
    if (ref.buffer == BufferId::Input) {
      if (!holdsInput(rank, ref.chunk))
        return fail("rank %d reads chunk %d of a buffer that does not hold it", rank, ref.chunk);
      *out = original(rank, ref.chunk, iteration);
      if (it != state.memory.end() && (it->second.block != out->block || it->second.counts != out->counts))
        return fail(
            "rank %d reads input chunk %d in iteration %d after it was overwritten (in place, output chunk %d is "
            "the same memory)",
            rank, ref.chunk, iteration, ref.chunk);
      return Status::ok();
    }
    if (it == state.memory.end())
      return fail("rank %d reads chunk %d of a buffer that does not hold it", rank, ref.chunk);
    *out = it->second;
    if (out->iteration != iteration)
      return fail("rank %d reads chunk %d written in iteration %d during iteration %d", rank, ref.chunk, out->iteration,
                  iteration);
    return Status::ok();
  }

  // ontoItself: a copy whose source is the same memory (in place), which the
  // executor skips; it changes no byte a reader by address may see.
  Status write(int rank, ChunkRef ref, const Value& value, int iteration, bool ontoItself = false) {
    WEFT_CHECK(checkScratch(rank, ref));
    if (ref.buffer == BufferId::None) return fail("rank %d writes no buffer", rank);
    if (ref.buffer == BufferId::Output) {
      // All-to-all: output chunk j holds rank j's block for this rank.
      int want = plan_.collective == Collective::AllToAll ? rank : ref.chunk;
      if (value.block != want)
        return fail("rank %d writes block %d into output chunk %d (which holds block %d)", rank, value.block, ref.chunk,
                    want);
      if (plan_.outputShape == BufferShape::OwnBlock && ref.chunk != ownBlock(rank))
        return fail("rank %d writes chunk %d, but its output holds only block %d", rank, ref.chunk, ownBlock(rank));
    }
    if (ref.buffer == BufferId::Input) return fail("rank %d writes into its input", rank);
    Loc loc = locate(ref, iteration);
    RankState& state = ranks_[rank];
    // Memory lent by address may be written again only once the write is
    // known to follow the receiver's read: through messages, whatever the
    // timing (causal runs), or in the order this run took (large ones).
    auto lent = state.loans.find(loc);
    if (lent != state.loans.end() && !ontoItself) {
      for (int id : lent->second) {
        const Loan& loan = loans_[static_cast<size_t>(id)];
        bool ordered = loan.takenAt != 0 && (!causal_ || state.clock[loan.receiver] >= loan.takenAt);
        if (!ordered)
          return fail(
              "rank %d overwrites %s chunk %d in iteration %d while rank %d may still read it by address "
              "(%s)",
              rank, bufferName(ref.buffer), ref.chunk, iteration, loan.receiver,
              loan.takenAt == 0 ? "it has not taken the message" : "no message orders the write after its read");
      }
      state.loans.erase(lent);
    }
    state.memory[loc] = value;
    return Status::ok();
  }

  Status combine(int rank, const Value& a, const Value& b, Value* out) {
    if (a.block != b.block) return fail("rank %d reduces block %d with block %d", rank, a.block, b.block);
    if (a.iteration != b.iteration)
      return fail("rank %d reduces values of iterations %d and %d", rank, a.iteration, b.iteration);
    *out = a;
    for (size_t i = 0; i < out->counts.size(); ++i) out->counts[i] += b.counts[i];
    return Status::ok();
  }

  Status execute(int rank, const Step& step, int iteration) {
    if (tokenIdle(step, iteration)) return Status::ok();
    Value received, operand, result;
    // After the receives (below), this step is one event of this rank.
    auto tick = [&](const std::vector<int>& takingLoans) {
      uint32_t now = causal_ ? ++ranks_[rank].clock[rank] : 1;
      for (int loan : takingLoans) loans_[static_cast<size_t>(loan)].takenAt = now;
    };
    std::vector<int> takingLoans;
    // Takes the message at the head of from's FIFO.
    auto take = [&](int from, Value* value) -> Status {
      auto& queue = fifos_[{from, rank}];
      Message message = std::move(queue.front());
      queue.pop_front();
      *value = message.value;
      if (causal_)
        for (size_t i = 0; i < message.clock.size(); ++i)
          ranks_[rank].clock[i] = std::max(ranks_[rank].clock[i], message.clock[i]);
      if (message.loan >= 0) takingLoans.push_back(message.loan);
      // A token is sent in one slice and may be awaited in another.
      if (step.op != StepOp::Await && value->iteration != iteration)
        return fail("rank %d received a message of iteration %d in iteration %d", rank, value->iteration, iteration);
      if ((value->block == kTokenBlock) != (step.op == StepOp::Await))
        return fail(
            "rank %d: %s from rank %d received %s", rank, stepOpName(step.op), from,
            value->block == kTokenBlock ? "a token where data was expected" : "data where a token was expected");
      return Status::ok();
    };
    if (stepReceives(step.op)) WEFT_CHECK(take(step.recvPeer, &received));
    if (stepFansIn(step)) {
      Value second;
      WEFT_CHECK(take(step.recvPeer2, &second));
      WEFT_CHECK(combine(rank, received, second, &received));
    }
    tick(takingLoans);
    if (stepIsToken(step.op)) {
      if (step.op == StepOp::Notify) {
        Value token;
        token.block = kTokenBlock;
        token.iteration = iteration;
        fifos_[{rank, step.sendPeer}].push_back(Message{token, -1, ranks_[rank].clock});
      }
      return Status::ok();
    }
    switch (step.op) {
      case StepOp::Send:
      case StepOp::Copy: WEFT_CHECK(read(rank, step.src, iteration, &result)); break;
      case StepOp::Recv:
      case StepOp::RecvSend: result = received; break;
      case StepOp::RecvReduceSend:
      case StepOp::RecvReduceCopy:
      case StepOp::RecvReduceCopySend:
        WEFT_CHECK(read(rank, step.src, iteration, &operand));
        WEFT_CHECK(combine(rank, operand, received, &result));
        break;
      case StepOp::LocalReduce: {
        Value second;
        WEFT_CHECK(read(rank, step.src, iteration, &operand));
        WEFT_CHECK(read(rank, step.src2, iteration, &second));
        WEFT_CHECK(combine(rank, operand, second, &result));
        break;
      }
      case StepOp::Notify:
      case StepOp::Await: break;
    }
    if (result.block != step.block)
      return fail("rank %d: %s moves block %d but declares block %d (the executor sizes it by the declared one)", rank,
                  stepOpName(step.op), result.block, step.block);
    // A RecvReduceSend with a dst leaves its partial sum there (to publish
    // it by address): a write like any other.
    bool writesDst = stepWrites(step.op) || (step.op == StepOp::RecvReduceSend && step.dst.buffer != BufferId::None);
    bool ontoItself = step.op == StepOp::Copy && locate(step.src, iteration) == locate(step.dst, iteration);
    if (writesDst) WEFT_CHECK(write(rank, step.dst, result, iteration, ontoItself));
    if (stepSends(step.op)) {
      Message message{result, -1, ranks_[rank].clock};
      // By address the receiver reads the sender's memory (Send: its source;
      // the others: what they just wrote), which nothing may overwrite until
      // the message is taken.
      if (stepMayPublish(step.flags, inPlace_)) {
        ChunkRef published = step.op == StepOp::Send ? step.src : step.dst;
        if (published.buffer == BufferId::None)
          return fail("rank %d: %s may publish by address but names no buffer to publish", rank, stepOpName(step.op));
        if (published.buffer == BufferId::Scratch)
          return fail("rank %d: %s publishes scratch by address, which the next slice overwrites", rank,
                      stepOpName(step.op));
        message.loan = static_cast<int>(loans_.size());
        loans_.push_back({rank, step.sendPeer, 0});
        ranks_[rank].loans[locate(published, iteration)].push_back(message.loan);
      }
      fifos_[{rank, step.sendPeer}].push_back(message);
    }
    return Status::ok();
  }

  Status deadlock() {
    std::string blocked;
    for (int r = 0; r < plan_.nranks; ++r) {
      std::span<const Step> steps = plans_[r].channel(channel_);
      const StepWalk& walk = ranks_[r].walk;
      if (walk.done(steps.size())) continue;
      const Step& step = steps[walk.step];
      blocked += format(" rank %d at %s (step %u, slice %zu);", r, stepOpName(step.op), walk.step, walk.slice);
    }
    return fail("deadlock with %d-slot FIFOs:%s", fifoSlots_, blocked.c_str());
  }

  // Every slice of the output chunk holds exactly these contributions.
  Status expect(int rank, int chunk, const std::vector<uint16_t>& counts) {
    if (chunk < 0) return fail("rank %d: no output chunk to check", rank);
    for (int iteration = 0; iteration < iterations_; ++iteration) {
      const std::map<Loc, Value>& memory = ranks_[rank].memory;
      auto it = memory.find({kOutputSpace, chunk, iteration});
      Value held;
      if (it != memory.end()) {
        held = it->second;
      } else if (inPlace_ && holdsInput(rank, chunk)) {
        held = original(rank, chunk, iteration);  // in place, never written: still the input
      } else {
        return fail("rank %d never writes output chunk %d in iteration %d", rank, chunk, iteration);
      }
      if (held.counts != counts) {
        std::string got;
        for (size_t i = 0; i < counts.size(); ++i)
          if (held.counts[i] != counts[i]) got += format(" rank %zu: %u (expected %u);", i, held.counts[i], counts[i]);
        return fail("rank %d output chunk %d has the wrong contributions in iteration %d:%s", rank, chunk, iteration,
                    got.c_str());
      }
      if (held.iteration != iteration)
        return fail("rank %d output chunk %d holds iteration %d's value in iteration %d", rank, chunk, held.iteration,
                    iteration);
    }
    return Status::ok();
  }

  Status checkOutputs() {
    int n = plan_.nranks;
    std::vector<uint16_t> all(static_cast<size_t>(n), 1);
    auto only = [n](int r) {
      std::vector<uint16_t> v(static_cast<size_t>(n), 0);
      v[r] = 1;
      return v;
    };
    for (int r = 0; r < n; ++r) {
      switch (plan_.collective) {
        case Collective::AllReduce:
          for (int j = 0; j < plan_.nBlocks; ++j) WEFT_CHECK(expect(r, j, all));
          break;
        case Collective::ReduceScatter: WEFT_CHECK(expect(r, ownBlock(r), all)); break;
        case Collective::AllGather:
          for (int j = 0; j < plan_.nBlocks; ++j) WEFT_CHECK(expect(r, j, only(plan_.nBlocks == 1 ? r : j)));
          break;
        case Collective::Broadcast: WEFT_CHECK(expect(r, 0, only(plan_.root))); break;
        case Collective::Reduce:
          if (r == plan_.root) WEFT_CHECK(expect(r, 0, all));
          break;
        case Collective::AllToAll:
        case Collective::Gather:
          if (plan_.collective == Collective::Gather && r != plan_.root) break;
          for (int j = 0; j < plan_.nBlocks; ++j) WEFT_CHECK(expect(r, j, only(plan_.nBlocks == 1 ? r : j)));
          break;
        case Collective::Scatter: WEFT_CHECK(expect(r, ownBlock(r), only(plan_.root))); break;
        case Collective::Send:
        case Collective::Recv: return fail("point-to-point operations have no plan to verify");
      }
    }
    return Status::ok();
  }

  const PlanSet& plans_;
  const Plan& plan_;  // rank 0's: the header every rank shares
  int channel_;
  int fifoSlots_;
  int iterations_;
  bool inPlace_;
  // Vector clocks cost n per message: kept up to this many ranks.
  static constexpr int kCausalMaxRanks = 128;
  bool causal_;
  std::vector<RankState> ranks_;
  std::vector<Loan> loans_;
  std::map<FifoKey, std::deque<Message>> fifos_;
  Status error_;
};

}  // namespace

Status verifyPlans(const PlanSet& plans, int fifoSlots, int iterations, bool inPlace) {
  if (plans.empty() || static_cast<int>(plans.size()) != plans.front().nranks)
    return WEFT_ERROR(weftInternalError, "%zu rank programs for nranks=%d", plans.size(),
                      plans.empty() ? 0 : plans.front().nranks);
  const Plan& first = plans.front();
  for (size_t r = 0; r < plans.size(); ++r) {
    const Plan& plan = plans[r];
    if (plan.rank != static_cast<int>(r) || plan.collective != first.collective || plan.nBlocks != first.nBlocks ||
        plan.nChannels != first.nChannels || plan.root != first.root || plan.geometry != first.geometry ||
        plan.inputShape != first.inputShape || plan.outputShape != first.outputShape)
      return WEFT_ERROR(weftInternalError, "rank %zu's program (rank %d) disagrees with rank 0's about the call", r,
                        plan.rank);
    if (static_cast<int>(plan.channelStart.size()) != plan.nChannels + 1 ||
        plan.channelStart.back() != plan.steps.size())
      return WEFT_ERROR(weftInternalError, "rank %zu has %zu channels, plan says %d", r, plan.channelStart.size() - 1,
                        plan.nChannels);
  }
  for (int channel = 0; channel < first.nChannels; ++channel)
    WEFT_CHECK(Verifier(plans, channel, fifoSlots, iterations, inPlace).run());
  return Status::ok();
}

Status verifyPlansEveryWay(const PlanSet& plans) {
  for (bool inPlace : {false, true})
    for (int slots : {kMinFifoSlots, 8}) {
      Status status = verifyPlans(plans, slots, 2, inPlace);
      if (!status.isOk())
        return Status(status.code(), format("%s (%s, %d-slot FIFOs)", status.message().c_str(),
                                            inPlace ? "in place" : "out of place", slots));
    }
  return Status::ok();
}

}  // namespace weft
