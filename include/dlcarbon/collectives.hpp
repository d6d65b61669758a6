#pragma once
// Collective communication time (docs/hardware-model.md, "Collectives"): bandwidth and latency
// of NCCL's ring and tree algorithms as NCCL's own tuning model estimates them, for GPUs; a ring
// with a fixed start-up for other accelerators (TPU interconnects, CPUs).
//
//   comm::Group g{.ranks = 512, .nodes = 64, .bandwidth = 25e9, .nccl = true};
//   double t = comm::collective_s(comm::Collective::all_gather, 404e6, g);

#include <cstdint>

namespace dlcarbon::comm {

enum class Collective { all_reduce, all_gather, reduce_scatter };

struct Group {
  std::int64_t ranks = 1;  // members of the group
  std::int64_t nodes = 1;  // nodes the group spans (ranks spread evenly over them)
  double bandwidth = 0;    // B/s per rank, one direction: the ring's bus bandwidth (NCCL's busBw)
  bool nccl = false;       // GPUs (NCCL's model, NVLink inside a node); else a fixed start-up
  std::int64_t fullest = 1, emptiest = 1;  // the group's ranks on its fullest and emptiest node
};

// One collective over `bytes`: the buffer all-reduced, or the whole buffer an all-gather
// assembles (a reduce-scatter reduces), each rank holding bytes / ranks of it.
double collective_s(Collective kind, double bytes, const Group& g);

// `count` equal collectives over `bytes` in all (per-layer or bucketed communication).
double collectives_s(Collective kind, double bytes, double count, const Group& g);

// The start-up of one collective on a non-GPU group (what every collective cost before NCCL's
// latencies were modelled).
inline constexpr double kFixedLatencyS = 20e-6;

}  // namespace dlcarbon::comm
