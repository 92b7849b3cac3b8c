#include "topology/search.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace weft {
namespace {

// Better rings first: larger bottleneck, then fewer socket crossings, then
// the better worst path class.
bool better(const RingChoice& a, const RingChoice& b) {
  if (a.bottleneckGBps != b.bottleneckGBps) return a.bottleneckGBps > b.bottleneckGBps;
  if (a.socketCrossings != b.socketCrossings) return a.socketCrossings < b.socketCrossings;
  return static_cast<int>(a.worstClass) < static_cast<int>(b.worstClass);
}

RingChoice score(const MachineTopology& topo, const std::vector<int>& devices, const std::vector<int>& order) {
  RingChoice ring;
  ring.order = order;
  size_t n = order.size();
  bool first = true;
  for (size_t i = 0; i < n && n > 1; ++i) {
    Path path = topo.path(devices[order[i]], devices[order[(i + 1) % n]]);
    if (first || path.bottleneckGBps < ring.bottleneckGBps) ring.bottleneckGBps = path.bottleneckGBps;
    first = false;
    if (static_cast<int>(path.cls) > static_cast<int>(ring.worstClass)) ring.worstClass = path.cls;
    if (path.cls == PathClass::CrossSocket) ++ring.socketCrossings;
  }
  return ring;
}

}  // namespace

RingChoice searchRing(const MachineTopology& topo, const std::vector<int>& devices) {
  size_t n = devices.size();
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  // Start from socket order (devices of one package contiguous), which
  // crosses sockets the minimum number of times.
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return topo.nodes[devices[a]].package < topo.nodes[devices[b]].package; });
  RingChoice best = score(topo, devices, order);
  if (n <= 3) return best;
  if (n <= 9) {
    // Every ring once: fix the first device, permute the rest.
    std::vector<int> rest(order.begin() + 1, order.end());
    std::sort(rest.begin(), rest.end());
    do {
      std::vector<int> candidate{order[0]};
      candidate.insert(candidate.end(), rest.begin(), rest.end());
      RingChoice ring = score(topo, devices, candidate);
      if (better(ring, best)) best = ring;
    } while (std::next_permutation(rest.begin(), rest.end()));
    return best;
  }
  // 2-opt: reverse segments while it helps.
  for (bool improved = true; improved;) {
    improved = false;
    for (size_t i = 1; i + 1 < n; ++i)
      for (size_t j = i + 1; j < n; ++j) {
        std::vector<int> candidate = best.order;
        std::reverse(candidate.begin() + static_cast<long>(i), candidate.begin() + static_cast<long>(j) + 1);
        RingChoice ring = score(topo, devices, candidate);
        if (better(ring, best)) {
          best = ring;
          improved = true;
        }
      }
  }
  return best;
}

DoubleTree buildDoubleTree(int n) {
  // Positions q = 1..n form an in-order binary tree: a node's level is its
  // lowest set bit b, its parent is q-b or q+b (whichever has lowest bit 2b),
  // climbing further where that lies beyond n; the root is the largest power
  // of two <= n and the leaves are the odd q. Tree 1 is the same tree over
  // the ranks mirrored (even n) or shifted by one (odd n), so a rank inner in
  // one tree is a leaf in the other: each sends its share down only once.
  std::vector<int> parentOfPosition(static_cast<size_t>(n), -1);
  int root = 1;
  while (root * 2 <= n) root *= 2;
  for (int q = 1; q <= n; ++q) {
    if (q == root) continue;
    int up = q;
    do {
      int low = up & -up;
      up = ((up / (2 * low)) % 2 != 0) ? up - low : up + low;
    } while (up > n);
    parentOfPosition[q - 1] = up - 1;
  }
  DoubleTree trees;
  for (int t = 0; t < 2; ++t) {
    auto rankAt = [&](int position) {
      if (t == 0) return position;
      return n % 2 == 0 ? n - 1 - position : (position + 1) % n;
    };
    trees.parent[t].assign(static_cast<size_t>(n), -1);
    trees.children[t].assign(static_cast<size_t>(n), {});
    for (int p = 0; p < n; ++p) {
      if (parentOfPosition[p] < 0) continue;
      int rank = rankAt(p), parent = rankAt(parentOfPosition[p]);
      trees.parent[t][rank] = parent;
      trees.children[t][parent].push_back(rank);
    }
  }
  return trees;
}

std::vector<int> hostRingOrder(const std::vector<int>& numaOfRank) {
  std::vector<int> order(numaOfRank.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return numaOfRank[a] < numaOfRank[b]; });
  return order;
}

std::vector<int> multiNodeRingOrder(const std::vector<int>& nodeOfRank, const std::vector<int>& keyOfRank) {
  std::vector<int> nodes;  // in order of their lowest rank
  for (int node : nodeOfRank)
    if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) nodes.push_back(node);
  std::vector<int> order;
  for (int node : nodes) {
    std::vector<int> ranks, keys;
    for (size_t r = 0; r < nodeOfRank.size(); ++r)
      if (nodeOfRank[r] == node) {
        ranks.push_back(static_cast<int>(r));
        keys.push_back(keyOfRank[r]);
      }
    for (int local : hostRingOrder(keys)) order.push_back(ranks[local]);
  }
  return order;
}

int channelsForRing(const RingChoice& ring, int maxChannels) {
  int channels = static_cast<int>(std::ceil(ring.bottleneckGBps / kChannelGBps - 1e-9));
  return std::clamp(channels, 1, std::max(1, maxChannels));
}

RankRing searchRankRing(const MachineTopology& topo, const std::vector<int>& deviceOfRank, int maxChannels) {
  std::vector<int> devices;  // distinct, in order of first use
  for (int device : deviceOfRank)
    if (std::find(devices.begin(), devices.end(), device) == devices.end()) devices.push_back(device);
  RankRing out;
  out.devices = searchRing(topo, devices);
  for (int d : out.devices.order)
    for (size_t r = 0; r < deviceOfRank.size(); ++r)
      if (deviceOfRank[r] == devices[d]) out.order.push_back(static_cast<int>(r));
  // Ranks sharing a device copy through its memory, which no link limits.
  out.channels = devices.size() > 1 ? channelsForRing(out.devices, maxChannels) : 1;
  return out;
}

std::vector<int> nearestNics(const MachineTopology& topo) {
  // Closest path class first, then the widest bottleneck; among NICs equally
  // close, the one fewest GPUs have taken so far, so that GPUs sharing a
  // switch with two NICs get one each instead of crowding the first.
  std::vector<int> nearest(topo.gpus.size(), -1);
  std::vector<int> taken(topo.nics.size(), 0);
  for (size_t g = 0; g < topo.gpus.size(); ++g) {
    Path bestPath;
    for (size_t i = 0; i < topo.nics.size(); ++i) {
      Path path = topo.path(topo.gpus[g], topo.nics[i]);
      bool closer =
          nearest[g] < 0 || static_cast<int>(path.cls) < static_cast<int>(bestPath.cls) ||
          (path.cls == bestPath.cls && path.bottleneckGBps > bestPath.bottleneckGBps) ||
          (path.cls == bestPath.cls && path.bottleneckGBps == bestPath.bottleneckGBps && taken[i] < taken[nearest[g]]);
      if (closer) {
        nearest[g] = static_cast<int>(i);
        bestPath = path;
      }
    }
    if (nearest[g] >= 0) ++taken[nearest[g]];
  }
  return nearest;
}

}  // namespace weft
