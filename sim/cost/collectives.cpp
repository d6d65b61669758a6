// NCCL's cost model, reduced to what a training step needs (docs/hardware-model.md,
// "Collectives"). The constants are NCCL's (NVIDIA/nccl, src/graph/tuning.cc, the 2.18-2.19
// series, 2023): a collective takes its algorithm's latency plus its bytes over the algorithm's
// bandwidth, and NCCL runs the algorithm and protocol that its model says is fastest. Only what
// applies to ordinary NVLink + network clusters is kept: ring (all three collectives) and tree
// (all-reduce across nodes), protocols Simple, LL128 (NVLink) and LL; not CollNet, NVLS or PAT.

#include "dlcarbon/collectives.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace dlcarbon::comm {

namespace {

// Per protocol: LL, LL128, Simple. Latencies in microseconds.
struct Protocol {
  double ring_base, ring_nvlink_hop, ring_net_hop;
  double tree_base, tree_nvlink_hop, tree_net_hop;
  double ring_bw, tree_bw;  // achieved share of the link bandwidth (bus bandwidth)
};
// baseLat, hwLat[NVLINK], hwLat[NET] of tuning.cc; bandwidth refinements of the same file:
// LL moves 8 bytes of data in 16 (and runs at 1/4 of the bus bandwidth across nodes and for
// all-reduce, 1/3 otherwise), LL128 120 in 128 (x 0.92), tree 0.92 (LL128 across nodes 120/128,
// LL 1/3.8 of it).
constexpr Protocol kLL{6.6, 0.6, 2.7, 6.8, 0.6, 5.0, 0.25, 0.92 / 3.8};
constexpr Protocol kLL128{14.0, 1.9, 4.0, 14.0, 1.25, 8.5, 0.92, 0.92 * 120.0 / 128.0};
constexpr Protocol kSimple{8.4, 3.4, 14.0, 0.0, 28.0, 28.0, 1.0, 0.92};

double ring_s(Collective kind, double bytes, const Group& g, const Protocol& p) {
  const double n = static_cast<double>(g.ranks), nodes = static_cast<double>(std::max<std::int64_t>(1, g.nodes));
  const double steps = kind == Collective::all_reduce ? 2 * (n - 1) : n - 1;
  const double inter = nodes > 1 ? (kind == Collective::all_reduce ? 2 * (nodes - 1) : nodes - 1) : 0;
  const double latency_us = p.ring_base + (steps - inter) * p.ring_nvlink_hop + inter * p.ring_net_hop;
  double share = p.ring_bw;
  if (&p == &kLL && nodes == 1 && kind != Collective::all_reduce) share = 1.0 / 3.0;
  // Bytes each rank moves over its link: (n - 1) / n of the buffer, twice for an all-reduce.
  return latency_us * 1e-6 + steps / n * bytes / (g.bandwidth * share);
}

double tree_s(double bytes, const Group& g, const Protocol& p) {
  const double nodes = static_cast<double>(g.nodes);
  const double per_node = static_cast<double>(g.ranks) / nodes;
  const double latency_us = p.tree_base + 2 * ((per_node - 1) * p.tree_nvlink_hop + std::floor(std::log2(nodes)) * p.tree_net_hop);
  // A tree all-reduce sends the buffer up and down: algorithm bandwidth half the bus bandwidth.
  return latency_us * 1e-6 + bytes / (0.5 * g.bandwidth * p.tree_bw);
}

}  // namespace

double collective_s(Collective kind, double bytes, const Group& g) {
  if (g.ranks <= 1 || bytes <= 0 || !(g.bandwidth > 0)) return 0;
  if (!g.nccl) {
    const double n = static_cast<double>(g.ranks);
    const double steps = kind == Collective::all_reduce ? 2 * (n - 1) : n - 1;
    return steps / n * bytes / g.bandwidth + kFixedLatencyS;
  }
  double best = std::numeric_limits<double>::infinity();
  for (const Protocol* p : {&kLL, &kLL128, &kSimple}) {
    best = std::min(best, ring_s(kind, bytes, g, *p));
    if (kind == Collective::all_reduce && g.nodes > 1) best = std::min(best, tree_s(bytes, g, *p));
  }
  return best;
}

double collectives_s(Collective kind, double bytes, double count, const Group& g) {
  if (!(count > 0)) return 0;
  return count * collective_s(kind, bytes / count, g);
}

}  // namespace dlcarbon::comm
