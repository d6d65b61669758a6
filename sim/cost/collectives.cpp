// NCCL's cost model, reduced to what a training step needs (docs/hardware-model.md,
// "Collectives"). The constants are NCCL's (NVIDIA/nccl, src/graph/tuning.cc, the 2.18-2.19
// series, 2023): a collective takes its algorithm's latency plus its bytes over the algorithm's
// bandwidth, and NCCL runs the algorithm and protocol that its model says is fastest. Only what
// applies to ordinary NVLink + network clusters is kept: ring (all three collectives) and tree
// (all-reduce), protocols LL, LL128 (NVLink) and Simple; not CollNet, NVLS or PAT, nor the
// per-channel bandwidth caps.

#include "dlcarbon/collectives.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dlcarbon::comm {

namespace {

enum Proto { LL = 0, LL128 = 1, SIMPLE = 2 };

// Latencies in microseconds: baseLat and hwLat (NVLink, network) of tuning.cc.
struct Protocol {
  Proto id;
  double ring_base, ring_nvlink_hop, ring_net_hop;
  double tree_base, tree_nvlink_hop, tree_net_hop;
};
constexpr Protocol kProtocols[] = {
    {LL, 6.6, 0.6, 2.7, 6.8, 0.6, 5.0},
    {LL128, 14.0, 1.9, 4.0, 14.0, 1.25, 8.5},
    {SIMPLE, 8.4, 3.4, 14.0, 0.0, 28.0, 28.0},
};
// A host's cost of posting a network operation, which bounds a hop inside a node from below once
// the ring crosses nodes (x 3 for Simple): tuning.cc's getNetOverhead for x86 Intel hosts.
constexpr double kNetOverheadUs = 1.0;
// Ring Simple all-reduce across nodes: the "plateau effect of ring", latency x 1.4 from Ampere on.
constexpr double kRingPlateau = 1.4;
// Trees do not follow the model for medium sizes: NCCL's correction of tree bandwidth by
// log2(bytes / 64), 64 B to 256 MB, per protocol (tuning.cc, treeCorrectionFactor).
constexpr double kTreeCorrection[3][23] = {
    {1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0},
    {1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0},
    {.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9}};

double ring_s(Collective kind, double bytes, const Group& g, const Protocol& p) {
  const double n = static_cast<double>(g.ranks), nodes = static_cast<double>(g.nodes);
  const double per_node = n / nodes;
  const bool all_reduce = kind == Collective::all_reduce;
  const double steps = all_reduce ? 2 * (n - 1) : n - 1;
  const double inter = nodes > 1 ? (all_reduce ? 2 * nodes : nodes - 1) : 0;
  double intra_hop = p.ring_nvlink_hop;
  if (nodes > 1) intra_hop = std::max(intra_hop, kNetOverheadUs * (p.id == SIMPLE ? 3 : 1));
  // NCCL's formula as written (with one rank a node an all-reduce's 2 x nodes network steps
  // exceed its 2 (n - 1) steps, and the difference comes off the hops inside nodes).
  double latency_us = p.ring_base + (steps - inter) * intra_hop + inter * p.ring_net_hop;
  if (p.id == SIMPLE && all_reduce && nodes > 1) latency_us *= kRingPlateau;
  // Achieved share of the link: LL sends 8 bytes of data in 16 (1/4 of the bus bandwidth across
  // nodes or for all-reduce, 1/3 otherwise), LL128 120 in 128 (0.92; 0.7 at one rank a node).
  double share = 1;
  if (p.id == LL) share = nodes > 1 || all_reduce ? 0.25 : 1.0 / 3.0;
  if (p.id == LL128) share = per_node < 2 ? 0.7 : 0.92;
  // Each rank moves (n - 1) / n of the buffer over its link, twice for an all-reduce.
  return latency_us * 1e-6 + steps / n * bytes / (g.bandwidth * share);
}

double tree_s(double bytes, const Group& g, const Protocol& p) {
  const double nodes = static_cast<double>(g.nodes);
  const double per_node = static_cast<double>(g.ranks) / nodes;
  const double latency_us = p.tree_base + 2 * ((per_node - 1) * p.tree_nvlink_hop + std::floor(std::log2(nodes)) * p.tree_net_hop);
  double share = 0.92;
  if (p.id == LL) share /= 3.8;
  if (p.id == LL128) share *= nodes == 1 ? 7.0 / 9.0 : 120.0 / 128.0;
  const double size = std::floor(std::log2(std::max(1.0, bytes / 64)));
  if (size < 23) share *= kTreeCorrection[p.id][static_cast<int>(size)];
  // A tree all-reduce sends the buffer up and down: algorithm bandwidth half the bus bandwidth.
  return latency_us * 1e-6 + bytes / (0.5 * g.bandwidth * share);
}

}  // namespace

double collective_s(Collective kind, double bytes, const Group& g) {
  if (g.ranks <= 1 || bytes <= 0 || !(g.bandwidth > 0)) return 0;
  if (!g.nccl) {
    const double n = static_cast<double>(g.ranks);
    const double steps = kind == Collective::all_reduce ? 2 * (n - 1) : n - 1;
    return steps / n * bytes / g.bandwidth + kFixedLatencyS;
  }
  Group h = g;
  h.nodes = std::clamp<std::int64_t>(g.nodes, 1, g.ranks);
  double best = std::numeric_limits<double>::infinity();
  for (const Protocol& p : kProtocols) {
    best = std::min(best, ring_s(kind, bytes, h, p));
    if (kind == Collective::all_reduce) best = std::min(best, tree_s(bytes, h, p));
  }
  return best;
}

double collectives_s(Collective kind, double bytes, double count, const Group& g) {
  if (!(count > 0)) return 0;
  return count * collective_s(kind, bytes / count, g);
}

}  // namespace dlcarbon::comm
