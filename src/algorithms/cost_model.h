// The cost model: the predicted time of one call of one algorithm, as
// latency terms plus bytes over bandwidths. Its inputs are constants
// measured on the host (hand-off latency, copy and reduce bandwidth: what
// `weft-info --calibrate` writes, or the shipped defaults) and the shape of
// the communicator (ranks, nodes, cores, the network's bandwidth from the
// topology). Every algorithm states its own costs next to its builder
// (AlgorithmEntry::cost); the tuner picks the cheapest candidate with them,
// and the simulator replays plans with the same functions.
//
// An algorithm describes one call as a few totals per rank (CostTerms):
//   hops       hand-offs on the critical path, each waiting for a peer;
//   netHops    those that cross the network;
//   steps      steps that do not wait on a peer beyond the first (the direct
//              broadcast root's sends after its first);
//   pieces     FIFO slots a rank passes beyond each step's first (a step's
//              first slot is its hop; the later ones pipeline behind it);
//   chained    whether each piece waits on one peer (rings, trees, chains)
//              rather than on whichever of many is ready: a chained piece
//              costs a hand-off (a switch when ranks outnumber cores), an
//              independent one only the executor's step;
//   copyBytes  bytes of the call's buffers this rank copies (into a slot
//              or out of one: the slots themselves stay in cache);
//   reduceBytes bytes it writes by reducing (into scratch or a slot too);
//   netBytes   bytes one node sends over the network in one direction;
//   wanHops, wanBytes  the same across a site link (communicators that span
//              sites), counted apart from the hops and bytes above.
// and time = call + hops * hop + netHops * netHop + wanHops * wanHop
//          + steps * step + pieces * (chained ? (crowded ? switch : hop) : step)
//          + max(copy / copyRate + reduce / reduceRate, net / netRate, wan / wanRate),
// the bandwidth terms overlapping because the slots pipeline them.
//
// Device communicators weigh a second protocol per candidate: LL, where the
// receiver sees flag and data in one store (a hand-off of llHopMicros, no
// fence) and every word is half flag (copies at llCopyGBps, slots of
// llSlotBytes). Their constants are the device's own (defaultCostConstants
// of the target, WEFT_DEVICE_TUNE_FILE over them), not the host's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "algorithms/plan.h"
#include "core/status.h"

namespace weft {

// Plain data (ranks agree on rank 0's copy at init, so every rank chooses
// alike). Rates in GB/s (1e9 bytes), times in microseconds. The defaults are
// what weft-info --calibrate measured on a 2-core AMD EPYC VM.
struct CostConstants {
  // A call's fixed cost whatever the algorithm: posting it, the worker
  // taking it up, completion (a 1-rank all-reduce of 8 bytes).
  double callMicros = 0.15;
  // One hand-off between two ranks of a node, each on a core of its own: a
  // step of a 2-rank all-reduce, send to the peer's wait returning.
  double hopMicros = 0.15;
  // The same when a node's ranks outnumber its cores, so the peer has to be
  // scheduled first (a yield to another thread on one core).
  double switchMicros = 2.7;
  // What the executor spends on one slot when it does not wait for it (not
  // measured by the calibration: a rank with slots of several peers ready
  // is hard to stage alone).
  double stepMicros = 0.3;
  // One core copying, counted once per byte copied.
  double copyGBps = 30.0;
  // One core reducing two float operands into a third: bytes written.
  double reduceGBps = 15.0;
  // All of a node's cores copying at once, in total (the memory's limit).
  double nodeCopyGBps = 33.0;
  // One hand-off over the network (socket transport, its proxy included).
  double netMicros = 30.0;
  // One node's network bandwidth per direction, when the topology knows no
  // NIC speed (10 Gbit/s).
  double netGBps = 1.25;
  // Across sites (WEFT_SITEID): one hand-off over the site link (its one-way
  // latency) and one node's share of it per direction. weft cannot measure
  // a long link at init; the defaults are the multi-site test hosts' (1
  // Gbit/s, 10 ms round trip): set the real link's in WEFT_TUNE_FILE.
  double wanMicros = 5000.0;
  double wanGBps = 0.125;
  // Device communicators' LL protocol: one hand-off (flag and data in one
  // store, no fence), and the rate a block copies at when half of every
  // word it stores is a flag. Host communicators have no LL.
  double llHopMicros = 0.15;
  double llCopyGBps = 15.0;
};

// Whose constants: the host's (host communicators), or a device's (its
// executor's launch, hand-offs and copies are the device's).
enum class CostTarget { Host, EmulatedDevice, CudaDevice };
const char* costTargetName(CostTarget target);

// The shipped defaults of a target. The host's and the emulated device's
// were measured on a 2-core AMD EPYC VM; the CUDA device's are estimates for
// an H100-class GPU that no run has measured yet (weft-info --calibrate
// --device measures them on the device at hand).
CostConstants defaultCostConstants(CostTarget target);

// How a device operation's slots carry data (host communicators: Simple).
enum class Protocol : uint8_t { Simple = 0, LowLatency = 1 };
const char* protocolName(Protocol protocol);

// The constants' names, for the tune file: "name = value" lines.
std::string formatCostConstants(const CostConstants& constants);
// Parses a tune file's text over the defaults; unknown names and malformed
// lines are errors naming the line.
Status parseCostConstants(const std::string& text, CostConstants* constants);
// The target's tune file over its defaults: WEFT_TUNE_FILE for the host,
// WEFT_DEVICE_TUNE_FILE for a device (an error when it cannot be read or
// parsed); the shipped defaults when it is not set.
Result<CostConstants> loadCostConstants(CostTarget target = CostTarget::Host);

// The communicator, as the model sees it.
struct CostShape {
  int nranks = 1;
  int nNodes = 1;
  int ranksPerNode = 1;  // the most ranks on one node
  int coresPerNode = 1;  // cores the ranks of a node share
  size_t slotBytes = 131072;
  size_t llSlotBytes = 8192;  // device communicators: the LL protocol's slot payload
  // Nodes of equal size (the hierarchical algorithm's condition).
  bool uniformNodes = true;
  // Sites the ranks span (WEFT_SITEID), each holding nranks / nSites ranks
  // one after another in ring order; 1: no site links.
  int nSites = 1;
  // Messages of copy collectives within [byAddressMinBytes,
  // byAddressMaxBytes] are read by the receiver straight out of the
  // sender's buffer (every rank a process of one node with cross-memory
  // attach: WEFT_CMA_THRESHOLD..WEFT_CMA_MAX), so a send costs its sender
  // no copy. Empty (min > max): every message passes through a slot.
  size_t byAddressMinBytes = SIZE_MAX;
  size_t byAddressMaxBytes = 0;
};

// One candidate call.
struct CostQuery {
  Collective collective = Collective::AllReduce;
  size_t bytes = 0;  // the call's larger side (all-gather's output, reduce-scatter's input)
  int channels = 1;
  Protocol protocol = Protocol::Simple;
  CostShape shape;
  CostConstants constants;
};

struct CostTerms {
  double hops = 0, netHops = 0, steps = 0, pieces = 0;
  double copyBytes = 0, reduceBytes = 0, netBytes = 0;
  double wanHops = 0, wanBytes = 0;
  bool chained = false;
};

// time in microseconds for the terms of a query.
double costMicros(const CostQuery& query, const CostTerms& terms);

// Helpers for the algorithms' cost functions.
namespace cost {
// FIFO slots beyond the first that `steps` steps of `stepBytes` each pass,
// over all channels (each channel moves its share of every step, at least
// one slot).
double pieces(const CostQuery& query, double steps, double stepBytes);
// The flat ring over every rank (ring.cc's plans): all-reduce,
// reduce-scatter, all-gather, and the chains of broadcast and reduce.
CostTerms ring(const CostQuery& query);
// Hops from a leaf to the root of a balanced binary tree over n ranks.
int treeDepth(int n);
// Whether the query's ranks span sites (and so its terms have WAN parts).
inline bool spansSites(const CostQuery& query) { return query.shape.nSites > 1; }
// Whether a copy collective's messages of this query go by address (see
// CostShape::byAddressMinBytes).
inline bool copiesByAddress(const CostQuery& query) {
  return query.bytes >= query.shape.byAddressMinBytes && query.bytes <= query.shape.byAddressMaxBytes;
}
// Nodes in one site (at least 1).
int nodesPerSite(const CostShape& shape);
}  // namespace cost

}  // namespace weft
