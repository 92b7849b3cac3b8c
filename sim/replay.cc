#include "sim/replay.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <limits>
#include <memory>
#include <queue>
#include <unordered_map>

#include "algorithms/tuner.h"
#include "core/logging.h"
#include "core/types.h"
#include "exec/geometry.h"
#include "exec/trace.h"

namespace weft::sim {
namespace {

enum class LinkKind : uint8_t { Pair, PortOut, PortIn, NicOut, NicIn, LeafUp, LeafDown, Wan, NodeWan, Memory };

// Where ranks sit: nodes, local ranks (rails), leaves and sites, and the
// group a replay that aggregates stands for.
class Layout {
 public:
  Layout(const MachineModel& m, int group) : m_(m), n_(m.nranks), group_(group) {
    node_ = m.nodeOfRank;
    if (node_.size() != static_cast<size_t>(n_)) node_.assign(static_cast<size_t>(n_), 0);
    local_.assign(static_cast<size_t>(n_), 0);
    std::unordered_map<int, int> seen;
    for (int r = 0; r < n_; ++r) local_[static_cast<size_t>(r)] = seen[node_[static_cast<size_t>(r)]]++;
    int nodes = 0;
    for (int v : node_) nodes = std::max(nodes, v + 1);
    // The nodes and leaves of one group (all of them when nothing is aggregated).
    groupNodes_ = group_ == n_ ? nodes : std::max(1, node_[static_cast<size_t>(group_ - 1)] + 1);
    groupLeaves_ = m.nodesPerLeaf > 0 ? (groupNodes_ + m.nodesPerLeaf - 1) / m.nodesPerLeaf : 1;
  }

  int node(int r) const { return node_[static_cast<size_t>(r)]; }
  int local(int r) const { return local_[static_cast<size_t>(r)]; }
  int rail(int r) const { return local_[static_cast<size_t>(r)] % std::max(1, m_.nicsPerNode); }
  int leaf(int r) const { return m_.nodesPerLeaf > 0 ? node(r) / m_.nodesPerLeaf : 0; }
  int site(int r) const {
    size_t k = static_cast<size_t>(node(r));
    return k < m_.siteOfNode.size() ? m_.siteOfNode[k] : 0;
  }
  // The first group's equivalent of a rank, node or leaf.
  int rankRep(int r) const { return r % group_; }
  int nodeRep(int k) const { return k % groupNodes_; }
  int leafRep(int l) const { return l % groupLeaves_; }
  int ranks() const { return n_; }

 private:
  const MachineModel& m_;
  int n_;
  int group_;
  std::vector<int> node_, local_;
  int groupNodes_ = 1, groupLeaves_ = 1;
};

struct Link {
  LinkKind kind;
  int a, b;
  double capacity;  // bytes per microsecond
  std::vector<uint32_t> flows;
  double bytes = 0;
  // Max-min filling.
  double left = 0;
  double unfrozen = 0;  // the weights of the flows not yet given a rate
  uint64_t stamp = 0;
};

struct Flow {
  double remaining = 0;
  double rate = 0;
  double weight = 1;  // identical flows it stands for (folded channels)
  double last = 0;
  double doneAt = 0;  // when it ends at its rate
  int heapAt = -1;    // its place in the heap of ends (-1: not there)
  uint32_t fifo = 0;
  uint64_t stamp = 0;
  bool frozen = false;
  bool fresh = true;  // no end scheduled yet
};

// A connector's FIFO, keyed as the receiver (a rank of the replayed group)
// sees it: messages there to read, free slots, and the connection that
// moves the sender's messages one at a time.
struct Fifo {
  int from, to, channel;
  int arrived = 0;
  int freeSlots = 0;
  std::deque<size_t> outgoing;  // bytes of messages waiting for the connection
  bool sending = false;
  std::vector<uint32_t> path;
  double latency = 0;
  // Inside a node the sending step itself writes into the receiver's slot
  // (shared memory, NVLink), so the transfer is part of the step; across
  // nodes the step hands the message to the NIC, which sends it after.
  bool push = false;
};

struct Cursor {
  int rank, channel;
  size_t nSteps = 0;  // the channel's
  StepWalk walk;      // its next step, and the slice it runs in
  bool busy = false;
  double started = 0;
  // The step in progress.
  int in1 = -1, in2 = -1, out = -1;
  size_t bytes = 0;
  size_t resolved = SIZE_MAX;  // the step whose FIFOs in1, in2 and out are
  // Each step's FIFOs (in1, in2, out), found once: a step has the same peers
  // in every slice, and looking them up was a fifth of a large replay.
  std::vector<std::array<int, 3>> ports;
  bool workDone = false;     // the engine's part of the step is over
  bool flowPending = false;  // a pushed message is still on its way
};

enum class EventKind : uint8_t { StepEnd, Arrive };

struct Event {
  double time;
  uint64_t seq;
  EventKind kind;
  uint32_t id;
  bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
};

class Replay {
 public:
  // plans: the replayed ranks' programs (all ranks, or the first group's).
  Replay(const PlanSet& plans, int nranks, size_t count, weftDataType_t type, const MachineModel& machine,
         const std::string& tracePath, int folded = 1)
      : plans_(plans),
        machine_(machine),
        folded_(folded),
        n_(nranks),
        g_(static_cast<int>(plans.size())),
        nChannels_(plans.front().nChannels),
        layout_(machine, g_) {
    if (!tracePath.empty())
      for (int r = 0; r < g_; ++r) tracers_.push_back(std::make_unique<Tracer>(tracePath, r, n_));
    op_.count = count;
    op_.type = type;
    op_.plan = &plans.front();
    geometry_ = geometryFor(op_, plans.front(), machine.slotBytes);
    engineBusy_.assign(machine.enginePerChannel ? static_cast<size_t>(g_) * nChannels_ : static_cast<size_t>(g_),
                       false);
    // Ranks beyond a node's cores share them.
    int perNode = 0;
    for (int r = 0; r < n_; ++r) perNode += layout_.node(r) == 0 ? 1 : 0;
    if (machine.coresPerNode > 0 && perNode > machine.coresPerNode && !machine.enginePerChannel) {
      crowded_ = true;
      coreShare_ = static_cast<double>(machine.coresPerNode) / perNode;
    }
    rankEnd_.assign(static_cast<size_t>(g_), 0.0);
    for (int r = 0; r < g_; ++r)
      for (int c = 0; c < nChannels_; ++c) {
        Cursor cursor;
        cursor.rank = r;
        cursor.channel = c;
        cursor.nSteps = plans_[static_cast<size_t>(r)].channel(c).size();
        cursor.walk = StepWalk(cursor.nSteps, geometry_.iterations);
        cursors_.push_back(cursor);
      }
  }

  Status run(ReplayResult* result) {
    for (size_t i = 0; i < cursors_.size(); ++i) tryStart(static_cast<uint32_t>(i));
    while (!events_.empty() || !ends_.empty()) {
      // Flows end before other events of the same time.
      if (!ends_.empty() && (events_.empty() || flows_[ends_.front()].doneAt <= events_.top().time)) {
        uint32_t fl = ends_.front();
        now_ = flows_[fl].doneAt;
        if (std::isinf(now_)) break;  // flows that can never end: a link of no capacity
        unlistEnd(fl);
        flowDone(fl);
        continue;
      }
      Event e = events_.top();
      events_.pop();
      now_ = e.time;
      switch (e.kind) {
        case EventKind::StepEnd: stepEnd(e.id); break;
        case EventKind::Arrive:
          ++fifos_[e.id].arrived;
          tryStart(cursorOf(fifos_[e.id].to, fifos_[e.id].channel));
          break;
      }
    }
    for (const Cursor& cursor : cursors_)
      if (!cursor.walk.done(cursor.nSteps)) return deadlock();
    for (size_t r = 0; r < tracers_.size(); ++r) {
      const Plan& plan = plans_[r];
      tracers_[r]->event(
          0, collectiveName(plan.collective), 0, static_cast<uint64_t>(rankEnd_[r] * 1e3),
          format("\"count\": %zu, \"type\": \"%s\", \"root\": %d, \"algorithm\": \"%s\", "
                 "\"channels\": %d, \"simulated\": true",
                 op_.count, typeName(op_.type), plan.root, algorithmName(plan.algorithm), plan.nChannels));
    }
    double end = 0;
    for (double t : rankEnd_) end = std::max(end, t);
    result->micros = end;
    result->messages = messages_ * static_cast<uint64_t>(n_ / g_) * static_cast<uint64_t>(folded_);
    result->replayedChannels = nChannels_;
    result->replayedRanks = g_;
    result->replayedCount = op_.count;
    result->rankMicros = rankEnd_;
    double busiest = -1;
    for (const Link& link : links_) {
      double busy = link.bytes / link.capacity;
      if (busy > busiest) {
        busiest = busy;
        result->busiestLinkBytes = link.bytes;
        result->busiestLink = linkName(link);
        result->busiestLinkUtilisation = end > 0 ? busy / end : 0;
      }
    }
    return Status::ok();
  }

 private:
  static std::string linkName(const Link& link) {
    switch (link.kind) {
      case LinkKind::Pair: return format("rank %d -> rank %d", link.a, link.b);
      case LinkKind::PortOut: return format("rank %d switch port out", link.a);
      case LinkKind::PortIn: return format("rank %d switch port in", link.a);
      case LinkKind::NicOut: return format("node %d NIC %d out", link.a, link.b);
      case LinkKind::NicIn: return format("node %d NIC %d in", link.a, link.b);
      case LinkKind::LeafUp: return format("leaf %d rail %d uplink", link.a, link.b);
      case LinkKind::LeafDown: return format("leaf %d rail %d downlink", link.a, link.b);
      case LinkKind::Wan: return format("site %d -> site %d", link.a, link.b);
      case LinkKind::NodeWan: return format("node %d -> site %d", link.a, link.b);
      case LinkKind::Memory: return format("node %d memory", link.a);
    }
    return "?";
  }

  uint32_t cursorOf(int rank, int channel) const { return static_cast<uint32_t>(rank * nChannels_ + channel); }
  size_t engineOf(const Cursor& c) const {
    return machine_.enginePerChannel ? static_cast<size_t>(c.rank) * nChannels_ + c.channel
                                     : static_cast<size_t>(c.rank);
  }

  void push(double time, EventKind kind, uint32_t id) { events_.push(Event{time, seq_++, kind, id}); }

  // The flows in flight, in a binary heap by their end (indexed, so that a
  // flow whose rate changes moves in place instead of leaving a stale entry).
  bool endsBefore(uint32_t a, uint32_t b) const {
    return flows_[a].doneAt != flows_[b].doneAt ? flows_[a].doneAt < flows_[b].doneAt : a < b;
  }
  void placeEnd(size_t i, uint32_t fl) {
    ends_[i] = fl;
    flows_[fl].heapAt = static_cast<int>(i);
  }
  void siftEnd(size_t i) {
    uint32_t fl = ends_[i];
    while (i > 0 && endsBefore(fl, ends_[(i - 1) / 2])) {
      placeEnd(i, ends_[(i - 1) / 2]);
      i = (i - 1) / 2;
    }
    for (;;) {
      size_t child = 2 * i + 1;
      if (child >= ends_.size()) break;
      if (child + 1 < ends_.size() && endsBefore(ends_[child + 1], ends_[child])) ++child;
      if (!endsBefore(ends_[child], fl)) break;
      placeEnd(i, ends_[child]);
      i = child;
    }
    placeEnd(i, fl);
  }
  void listEnd(uint32_t fl) {
    if (flows_[fl].heapAt < 0) {
      ends_.push_back(fl);
      flows_[fl].heapAt = static_cast<int>(ends_.size() - 1);
    }
    siftEnd(static_cast<size_t>(flows_[fl].heapAt));
  }
  void unlistEnd(uint32_t fl) {
    size_t i = static_cast<size_t>(flows_[fl].heapAt);
    flows_[fl].heapAt = -1;
    uint32_t last = ends_.back();
    ends_.pop_back();
    if (i < ends_.size()) {
      placeEnd(i, last);
      siftEnd(i);
    }
  }

  uint32_t link(LinkKind kind, int a, int b, double gbps) {
    uint64_t key = (static_cast<uint64_t>(kind) << 56) | (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 28) |
                   static_cast<uint32_t>(b);
    auto [it, made] = linkIndex_.try_emplace(key, static_cast<uint32_t>(links_.size()));
    if (made) links_.push_back(Link{kind, a, b, gbps * 1e3, {}, 0, 0, 0, 0});
    return it->second;
  }

  // The path and latency of a message from rank `from` to rank `to` (any
  // ranks), with every link named by its first group's equivalent.
  void route(int from, int to, Fifo* f) {
    const MachineModel& m = machine_;
    const Layout& l = layout_;
    f->path.clear();
    f->push = l.node(from) == l.node(to);
    if (f->push) {
      f->latency = crowded_ ? std::max(m.intraNode.latencyMicros, m.switchMicros) : m.intraNode.latencyMicros;
      if (m.nodeMemoryGBps > 0) f->path.push_back(link(LinkKind::Memory, l.nodeRep(l.node(from)), 0, m.nodeMemoryGBps));
      if (m.intraSwitched) {
        f->path.push_back(link(LinkKind::PortOut, l.rankRep(from), 0, m.intraNode.gbps));
        f->path.push_back(link(LinkKind::PortIn, l.rankRep(to), 0, m.intraNode.gbps));
      } else {
        // The pair as its sender's group sees it.
        int shift = from - l.rankRep(from);
        double gbps = m.intraNode.gbps;
        size_t perNode = static_cast<size_t>(std::lround(std::sqrt(static_cast<double>(m.pairGBps.size()))));
        size_t at = static_cast<size_t>(l.local(from)) * perNode + static_cast<size_t>(l.local(to));
        if (perNode > 0 && at < m.pairGBps.size() && m.pairGBps[at] > 0) gbps = m.pairGBps[at];
        f->path.push_back(link(LinkKind::Pair, from - shift, ((to - shift) % n_ + n_) % n_, gbps));
      }
      return;
    }
    f->latency = m.network.latencyMicros;
    int railFrom = l.rail(from), railTo = l.rail(to);
    f->path.push_back(link(LinkKind::NicOut, l.nodeRep(l.node(from)), railFrom, m.network.gbps));
    bool crossSite = l.site(from) != l.site(to);
    if (m.nodesPerLeaf > 0 || crossSite) {
      bool up = crossSite || l.leaf(from) != l.leaf(to) || railFrom != railTo;
      // Without oversubscription a leaf's uplinks carry at most what its
      // NICs do, so they never limit a flow and are left out.
      if (up && m.nodesPerLeaf > 0 && m.oversubscription > 1) {
        double uplink = m.network.gbps * m.nodesPerLeaf / std::max(1.0, m.oversubscription);
        f->path.push_back(link(LinkKind::LeafUp, l.leafRep(l.leaf(from)), railFrom, uplink));
        f->path.push_back(link(LinkKind::LeafDown, l.leafRep(l.leaf(to)), railTo, uplink));
      }
      if (crossSite) {
        f->latency += m.wan.latencyMicros;
        f->path.push_back(m.wanPerNode ? link(LinkKind::NodeWan, l.nodeRep(l.node(from)), l.site(to), m.wan.gbps)
                                       : link(LinkKind::Wan, l.site(from), l.site(to), m.wan.gbps));
      }
    }
    f->path.push_back(link(LinkKind::NicIn, l.nodeRep(l.node(to)), railTo, m.network.gbps));
  }

  // The FIFO from `from` (any rank) to `to` (a replayed rank) on channel.
  int fifo(int from, int to, int channel) {
    uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(from)) << 32) |
                   (static_cast<uint64_t>(static_cast<uint32_t>(to)) << 8) | static_cast<uint32_t>(channel);
    auto [it, made] = fifoIndex_.try_emplace(key, static_cast<uint32_t>(fifos_.size()));
    if (made) {
      Fifo f;
      f.from = from;
      f.to = to;
      f.channel = channel;
      f.freeSlots = machine_.nSlots;
      route(from, to, &f);
      fifos_.push_back(std::move(f));
    }
    return static_cast<int>(it->second);
  }

  // The FIFO a replayed rank sends into, to any rank: that of the rank in
  // the first group that stands where the receiver does.
  int sendFifo(int rank, int to, int channel) {
    int shift = to - layout_.rankRep(to);
    return fifo(((rank - shift) % n_ + n_) % n_, to - shift, channel);
  }

  double copyMicros(double bytes) const { return bytes / (machine_.copyGBps * 1e3 * coreShare_); }
  double reduceMicros(double bytes) const { return bytes / (machine_.reduceGBps * 1e3 * coreShare_); }

  // Starts the cursor's next step if it can run now; skips steps that move
  // nothing.
  void tryStart(uint32_t id) {
    Cursor& cursor = cursors_[id];
    if (cursor.busy || engineBusy_[engineOf(cursor)]) return;
    const Plan& plan = plans_[static_cast<size_t>(cursor.rank)];
    std::span<const Step> steps = plan.channel(cursor.channel);
    while (!cursor.walk.done(steps.size())) {
      size_t iteration = cursor.walk.slice;
      const Step& step = steps[cursor.walk.step];
      size_t bytes = 0;
      if (stepIsToken(step.op)) {
        // Tokens move once per channel, in its first slice (or last).
        if (iteration != (step.onLastSlice ? geometry_.iterations - 1 : 0)) {
          cursor.walk.advance(steps.data(), steps.size(), geometry_.iterations);
          continue;
        }
      } else {
        size_t lo = 0, hi = 0;
        geometry_.slice(cursor.channel, iteration, step.block, &lo, &hi);
        if (hi <= lo && !plan.emptyMessages) {  // nothing of the block in this slice, on every rank
          cursor.walk.advance(steps.data(), steps.size(), geometry_.iterations);
          continue;
        }
        bytes = hi > lo ? (hi - lo) * geometry_.typeBytes : 0;
      }
      if (cursor.resolved != cursor.walk.taken) {  // a step waiting is tried again and again
        if (cursor.ports.empty()) cursor.ports.assign(steps.size(), {-2, -2, -2});
        std::array<int, 3>& ports = cursor.ports[cursor.walk.step];
        if (ports[0] == -2)
          ports = {stepReceives(step.op) ? fifo(step.recvPeer, cursor.rank, cursor.channel) : -1,
                   stepFansIn(step) ? fifo(step.recvPeer2, cursor.rank, cursor.channel) : -1,
                   stepSends(step.op) ? sendFifo(cursor.rank, step.sendPeer, cursor.channel) : -1};
        cursor.in1 = ports[0];
        cursor.in2 = ports[1];
        cursor.out = ports[2];
        cursor.resolved = cursor.walk.taken;
      }
      int in1 = cursor.in1, in2 = cursor.in2, out = cursor.out;
      if ((in1 >= 0 && fifos_[in1].arrived == 0) || (in2 >= 0 && fifos_[in2].arrived == 0) ||
          (out >= 0 && fifos_[out].freeSlots == 0))
        return;
      if (in1 >= 0) --fifos_[in1].arrived;
      if (in2 >= 0) --fifos_[in2].arrived;
      if (out >= 0) --fifos_[out].freeSlots;
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
      if (in2 >= 0) work += reduceMicros(b);
      cursor.busy = true;
      cursor.started = now_;
      cursor.bytes = bytes;
      cursor.workDone = false;
      cursor.flowPending = false;
      engineBusy_[engineOf(cursor)] = true;
      if (out >= 0 && fifos_[out].push) send(static_cast<uint32_t>(out), bytes, &cursor);
      push(now_ + work, EventKind::StepEnd, id);
      return;
    }
  }

  void stepEnd(uint32_t id) {
    Cursor& cursor = cursors_[id];
    cursor.workDone = true;
    if (!cursor.flowPending) finishStep(id);
  }

  // The step's work and its pushed message are both done.
  void finishStep(uint32_t id) {
    Cursor& cursor = cursors_[id];
    const Plan& plan = plans_[static_cast<size_t>(cursor.rank)];
    std::span<const Step> steps = plan.channel(cursor.channel);
    size_t iteration = cursor.walk.slice;
    const Step& step = steps[cursor.walk.step];
    if (!tracers_.empty())
      tracers_[static_cast<size_t>(cursor.rank)]->event(
          1 + cursor.channel, stepOpName(step.op), static_cast<uint64_t>(cursor.started * 1e3),
          static_cast<uint64_t>(now_ * 1e3),
          format("\"bytes\": %zu, \"block\": %d, \"slice\": %zu, \"recvPeer\": %d, \"sendPeer\": %d", cursor.bytes,
                 step.block, iteration, step.recvPeer, step.sendPeer));
    rankEnd_[static_cast<size_t>(cursor.rank)] = std::max(rankEnd_[static_cast<size_t>(cursor.rank)], now_);
    cursor.busy = false;
    cursor.walk.advance(steps.data(), steps.size(), geometry_.iterations);
    engineBusy_[engineOf(cursor)] = false;
    int freed[2] = {cursor.in1, cursor.in2};
    if (cursor.out >= 0 && !fifos_[cursor.out].push) send(static_cast<uint32_t>(cursor.out), cursor.bytes, nullptr);
    // The engine goes to the next channel of the rank that can run, round
    // robin from this one; then the senders whose slots were freed.
    if (machine_.enginePerChannel) {
      tryStart(id);
    } else {
      for (int k = 1; k <= nChannels_; ++k) tryStart(cursorOf(cursor.rank, (cursor.channel + k) % nChannels_));
    }
    for (int f : freed)
      if (f >= 0) {
        Fifo& in = fifos_[f];
        ++in.freeSlots;
        tryStart(cursorOf(layout_.rankRep(in.from), in.channel));
      }
  }

  // Queues a message on a connection; `pusher` is the cursor whose step
  // lasts until a pushed message has arrived.
  void send(uint32_t fifoId, size_t bytes, Cursor* pusher) {
    ++messages_;
    fifos_[fifoId].outgoing.push_back(bytes);
    if (pusher != nullptr && bytes > 0) pusher->flowPending = true;
    startNext(fifoId);
  }

  // Puts the connection's next message on its way.
  void startNext(uint32_t id) {
    Fifo& f = fifos_[id];
    while (!f.sending && !f.outgoing.empty()) {
      size_t bytes = f.outgoing.front();
      f.outgoing.pop_front();
      if (bytes == 0) {  // a header alone waits for no bandwidth
        push(now_ + f.latency, EventKind::Arrive, id);
        continue;
      }
      uint32_t flowId;
      if (!freeFlows_.empty()) {
        flowId = freeFlows_.back();
        freeFlows_.pop_back();
      } else {
        flowId = static_cast<uint32_t>(flows_.size());
        flows_.emplace_back();
      }
      Flow& flow = flows_[flowId];
      flow.remaining = static_cast<double>(bytes);
      flow.rate = 0;
      flow.weight = folded_;
      flow.fresh = true;
      flow.last = now_;
      flow.fifo = id;
      for (uint32_t l : f.path) {
        links_[l].flows.push_back(flowId);
        links_[l].bytes += static_cast<double>(bytes);
      }
      f.sending = true;
      reshare(f.path);
    }
  }

  void flowDone(uint32_t id) {
    Flow& flow = flows_[id];
    const std::vector<uint32_t>& path = fifos_[flow.fifo].path;
    for (uint32_t l : path) {
      std::vector<uint32_t>& on = links_[l].flows;
      auto it = std::find(on.begin(), on.end(), id);
      *it = on.back();
      on.pop_back();
    }
    freeFlows_.push_back(id);
    Fifo& f = fifos_[flow.fifo];
    uint32_t fifoId = flow.fifo;
    push(now_ + f.latency, EventKind::Arrive, fifoId);
    f.sending = false;
    reshare(path);
    if (f.push) {
      uint32_t pusher = cursorOf(layout_.rankRep(f.from), f.channel);
      cursors_[pusher].flowPending = false;
      if (cursors_[pusher].workDone) finishStep(pusher);
    }
    startNext(fifoId);
  }

  // Max-min fair rates for the flows that share links, transitively, with
  // `seeds`: progressive filling, the most contended link first.
  void reshare(const std::vector<uint32_t>& seeds) {
    ++stamp_;
    compLinks_.clear();
    compFlows_.clear();
    for (uint32_t l : seeds)
      if (links_[l].stamp != stamp_) {
        links_[l].stamp = stamp_;
        compLinks_.push_back(l);
      }
    for (size_t i = 0; i < compLinks_.size(); ++i)
      for (uint32_t fl : links_[compLinks_[i]].flows) {
        Flow& flow = flows_[fl];
        if (flow.stamp == stamp_) continue;
        flow.stamp = stamp_;
        compFlows_.push_back(fl);
        for (uint32_t l : fifos_[flow.fifo].path)
          if (links_[l].stamp != stamp_) {
            links_[l].stamp = stamp_;
            compLinks_.push_back(l);
          }
      }
    for (uint32_t fl : compFlows_) {
      Flow& flow = flows_[fl];
      flow.remaining = std::max(0.0, flow.remaining - flow.rate * (now_ - flow.last));
      flow.last = now_;
      flow.frozen = false;
    }
    for (uint32_t l : compLinks_) {
      links_[l].left = links_[l].capacity;
      links_[l].unfrozen = 0;
      for (uint32_t fl : links_[l].flows) links_[l].unfrozen += flows_[fl].weight;
    }
    size_t frozen = 0;
    while (frozen < compFlows_.size()) {
      double share = std::numeric_limits<double>::infinity();
      uint32_t tightest = 0;
      for (uint32_t l : compLinks_) {
        const Link& link = links_[l];
        if (link.unfrozen > 0.5 && link.left / link.unfrozen < share) {
          share = link.left / link.unfrozen;
          tightest = l;
        }
      }
      share = std::max(share, 0.0);
      for (uint32_t fl : links_[tightest].flows) {
        Flow& flow = flows_[fl];
        if (flow.frozen) continue;
        flow.frozen = true;
        ++frozen;
        double rate = share * flow.weight;
        if (flow.fresh || flow.rate != rate) {  // else its end is where it was
          flow.fresh = false;
          flow.rate = rate;
          flow.doneAt = rate > 0 ? now_ + flow.remaining / rate : std::numeric_limits<double>::infinity();
          listEnd(fl);
        }
        for (uint32_t l : fifos_[flow.fifo].path) {
          links_[l].left -= rate;
          links_[l].unfrozen -= flow.weight;
        }
      }
    }
  }

  Status deadlock() const {
    std::string where;
    for (const Cursor& cursor : cursors_) {
      if (cursor.walk.done(cursor.nSteps)) continue;
      std::span<const Step> steps = plans_[static_cast<size_t>(cursor.rank)].channel(cursor.channel);
      where += format(" rank %d channel %d at %s (slice %zu);", cursor.rank, cursor.channel,
                      stepOpName(steps[cursor.walk.step].op), cursor.walk.slice);
    }
    return WEFT_ERROR(weftInternalError, "the replay of %s/%s deadlocked:%s", collectiveName(plans_.front().collective),
                      algorithmName(plans_.front().algorithm), where.c_str());
  }

  const PlanSet& plans_;
  const MachineModel& machine_;
  int folded_;            // channels each replayed channel stands for
  bool crowded_ = false;  // a node's ranks outnumber its cores
  double coreShare_ = 1;  // of a core, each rank's engine
  int n_;                 // ranks in the call
  int g_;                 // ranks replayed
  int nChannels_;
  Layout layout_;
  OpDesc op_;
  Geometry geometry_;
  std::vector<bool> engineBusy_;
  std::vector<Cursor> cursors_;
  std::vector<double> rankEnd_;
  std::vector<Fifo> fifos_;
  std::unordered_map<uint64_t, uint32_t> fifoIndex_;
  std::vector<Link> links_;
  std::unordered_map<uint64_t, uint32_t> linkIndex_;
  std::vector<Flow> flows_;
  std::vector<uint32_t> freeFlows_;
  std::vector<uint32_t> compLinks_, compFlows_;
  uint64_t stamp_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::vector<uint32_t> ends_;
  // flows in flight, a heap by doneAt
  uint64_t seq_ = 0;
  double now_ = 0;
  uint64_t messages_ = 0;
  std::vector<std::unique_ptr<Tracer>> tracers_;  // written when the replay ends
};

Status checkMachine(const MachineModel& machine) {
  if (machine.nSlots < 1 || machine.slotBytes < 64 || machine.copyGBps <= 0 || machine.reduceGBps <= 0 ||
      machine.intraNode.gbps <= 0 || machine.network.gbps <= 0 || machine.wan.gbps <= 0 || machine.nicsPerNode < 1 ||
      machine.nodesPerLeaf < 0 || machine.oversubscription < 1 || machine.nodeMemoryGBps < 0 ||
      machine.coresPerNode < 0 || machine.switchMicros < 0)
    return WEFT_ERROR(weftInvalidArgument,
                      "replay: the machine model needs slots, rates above 0, a NIC per node and an "
                      "oversubscription of at least 1");
  if (!machine.nodeOfRank.empty() && machine.nodeOfRank.size() != static_cast<size_t>(machine.nranks))
    return WEFT_ERROR(weftInvalidArgument, "replay: %zu nodes given for %d ranks", machine.nodeOfRank.size(),
                      machine.nranks);
  return Status::ok();
}

// Whether plan `b` is plan `a` with every peer moved `shift` ranks on (mod
// n): the same steps, buffers and flags; blocks may be renamed.
bool shiftedCopy(const Plan& a, const Plan& b, int shift, int n) {
  if (a.nChannels != b.nChannels || a.steps.size() != b.steps.size() || a.channelStart != b.channelStart ||
      a.emptyMessages != b.emptyMessages || a.nBlocks != b.nBlocks)
    return false;
  auto moved = [&](int peer) { return peer < 0 ? peer : (peer + shift) % n; };
  for (size_t i = 0; i < a.steps.size(); ++i) {
    const Step &x = a.steps[i], &y = b.steps[i];
    if (x.op != y.op || x.flags != y.flags || x.onLastSlice != y.onLastSlice || moved(x.recvPeer) != y.recvPeer ||
        moved(x.recvPeer2) != y.recvPeer2 || moved(x.sendPeer) != y.sendPeer || x.src.buffer != y.src.buffer ||
        x.dst.buffer != y.dst.buffer || x.src2.buffer != y.src2.buffer)
      return false;
  }
  return true;
}

// The group a replay may stand on: the ranks of a leaf (or a node without
// leaves), when every node holds as many ranks, in order, and there is one
// site. 0 where the machine has no such symmetry.
int symmetricGroup(const MachineModel& m) {
  int n = m.nranks;
  if (m.nodeOfRank.size() != static_cast<size_t>(n)) return 0;
  for (int s : m.siteOfNode)
    if (s != 0) return 0;
  int perNode = 0;
  while (perNode < n && m.nodeOfRank[static_cast<size_t>(perNode)] == 0) ++perNode;
  for (int r = 0; r < n; ++r)
    if (m.nodeOfRank[static_cast<size_t>(r)] != r / perNode) return 0;
  int group = perNode * (m.oversubscription > 1 ? std::max(1, m.nodesPerLeaf) : 1);
  if (m.nicsPerNode > 1 && perNode % m.nicsPerNode != 0) return 0;
  return n % group == 0 && n / group >= 2 ? group : 0;
}

// Replays one group's plans (aggregation), with every block as long as the
// first, and with their channels folded when they fall into k classes of
// equal size whose channels run the same steps (a ring's channels: one
// class; a double binary tree's: two) and every channel's share of a block
// is as long: each class becomes one channel whose flows count as C/k
// flows on every link they cross, with C/k times the engine rates (engines
// per channel) or step costs (one engine a rank), and slots C/k times as
// large.
Status replayFolded(PlanSet plans, int n, size_t count, weftDataType_t type, const MachineModel& machine,
                    ReplayResult* result, const std::string& tracePath, bool aggregated) {
  Plan& first = plans.front();
  int channels = first.nChannels;
  auto sameSteps = [](std::span<const Step> a, std::span<const Step> b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](const Step& x, const Step& y) {
             return x.op == y.op && x.recvPeer == y.recvPeer && x.recvPeer2 == y.recvPeer2 &&
                    x.sendPeer == y.sendPeer && x.block == y.block && x.onLastSlice == y.onLastSlice;
           });
  };
  // Classes: channel c runs what channel c % k does, for the smallest such k.
  int k = 1;
  for (; k < channels; ++k) {
    if (channels % k != 0) continue;
    bool ok = true;
    for (const Plan& plan : plans)
      for (int c = k; c < channels && ok; ++c) ok = sameSteps(plan.channel(c % k), plan.channel(c));
    if (ok) break;
  }
  OpDesc op;
  op.count = count;
  op.type = type;
  op.plan = &first;
  Geometry g = geometryFor(op, first, machine.slotBytes);
  size_t equalBlocks =
      first.geometry == BlockGeometry::Split ? g.blockCount * static_cast<size_t>(first.nBlocks) : count;
  bool fold = k < channels && g.channelCount * static_cast<size_t>(channels) == g.blockCount;
  // Only a replay of one group needs every block alike; folding needs it too.
  if (aggregated || fold) count = equalBlocks;
  if (!fold) return Replay(plans, n, count, type, machine, tracePath).run(result);
  int weight = channels / k;
  for (Plan& plan : plans) {
    std::vector<Step> steps;
    std::vector<uint32_t> starts{0};
    for (int c = 0; c < k; ++c) {
      steps.insert(steps.end(), plan.channel(c).begin(), plan.channel(c).end());
      starts.push_back(static_cast<uint32_t>(steps.size()));
    }
    plan.steps = std::move(steps);
    plan.channelStart = std::move(starts);
    plan.nChannels = k;
  }
  MachineModel m = machine;
  m.slotBytes *= static_cast<size_t>(weight);
  if (m.enginePerChannel) {
    m.copyGBps *= weight;
    m.reduceGBps *= weight;
  } else {
    m.stepMicros *= weight;
  }
  Status status = Replay(plans, n, count, type, m, tracePath, weight).run(result);
  result->foldedChannels = true;
  return status;
}

}  // namespace

Status replay(const PlanSet& plans, size_t count, weftDataType_t type, const MachineModel& machine,
              ReplayResult* result, const std::string& tracePath) {
  if (plans.empty() || static_cast<int>(plans.size()) != plans.front().nranks)
    return WEFT_ERROR(weftInvalidArgument, "replay: %zu rank programs for nranks=%d", plans.size(),
                      plans.empty() ? 0 : plans.front().nranks);
  MachineModel m = machine;
  m.nranks = plans.front().nranks;
  if (m.nodeOfRank.size() != static_cast<size_t>(m.nranks)) m.nodeOfRank.assign(static_cast<size_t>(m.nranks), 0);
  WEFT_CHECK(checkMachine(m));
  *result = ReplayResult{};
  return Replay(plans, m.nranks, count, type, m, tracePath).run(result);
}

Status simulate(const AlgorithmEntry& entry, PlanRequest request, size_t count, weftDataType_t type,
                const MachineModel& machine, ReplayResult* result, Aggregation aggregation,
                const std::string& tracePath) {
  MachineModel m = machine;
  m.nranks = request.nranks;
  if (m.nodeOfRank.size() != static_cast<size_t>(m.nranks)) m.nodeOfRank.assign(static_cast<size_t>(m.nranks), 0);
  WEFT_CHECK(checkMachine(m));
  *result = ReplayResult{};
  request.nodeOfRank = m.nodeOfRank;
  // The sites the plans see (WEFT_SITEID's): those of the machine's nodes.
  if (request.siteOfRank.empty() && !m.siteOfNode.empty())
    for (int node : m.nodeOfRank)
      request.siteOfRank.push_back(static_cast<size_t>(node) < m.siteOfNode.size() ? m.siteOfNode[node] : 0);
  int n = request.nranks;
  // The channels' rings, as a communicator builds them from its ring (here
  // the ranks in order, every node's together).
  if (request.rings.empty()) request.rings = channelRings(identityRing(n), request.nodeOfRank, Tuner::kMaxChannels);
  request.rank = 0;
  Plan first = entry.build(request);
  // Some million steps of plans (about 40 bytes each) is where replaying
  // them one by one starts to take seconds. Ranks' plans differ in length
  // (a tree's root and leaves): a middle rank's counts too.
  request.rank = n / 2;
  size_t steps = std::max(first.steps.size(), entry.build(request).steps.size()) * static_cast<size_t>(n);
  constexpr size_t kStepsForAggregation = 1u << 20;
  bool wanted =
      aggregation == Aggregation::Always || (aggregation == Aggregation::Auto && steps >= kStepsForAggregation);
  int group = wanted ? symmetricGroup(m) : 0;
  if (wanted && group > 0) {
    PlanSet plans;
    plans.push_back(std::move(first));
    for (int r = 1; r < 2 * group; ++r) {
      request.rank = r;
      plans.push_back(entry.build(request));
    }
    bool symmetric = true;
    for (int r = 0; r < group && symmetric; ++r)
      symmetric = shiftedCopy(plans[static_cast<size_t>(r)], plans[static_cast<size_t>(r) + static_cast<size_t>(group)],
                              group, n);
    if (symmetric) {
      plans.resize(static_cast<size_t>(group));
      return replayFolded(std::move(plans), n, count, type, m, result, tracePath, true);
    }
    if (aggregation == Aggregation::Always)
      return WEFT_ERROR(weftInvalidArgument,
                        "simulate: %s's plans for %s on %d ranks are not the same from one group of %d ranks "
                        "to the next, so they cannot be aggregated",
                        entry.name, collectiveName(request.collective), n, group);
    plans.clear();
  } else if (aggregation == Aggregation::Always) {
    return WEFT_ERROR(weftInvalidArgument,
                      "simulate: the machine has no group of ranks to aggregate over (equal nodes, one site, "
                      "at least two leaves or nodes)");
  }
  PlanSet plans = buildPlanSet(entry, request);
  // Plans too many to replay step by step: their channels folded where they repeat.
  if (wanted) return replayFolded(std::move(plans), n, count, type, m, result, tracePath, false);
  return Replay(plans, n, count, type, m, tracePath).run(result);
}

}  // namespace weft::sim
