#pragma once
// Inference from first principles: the forward graph at the job's batch size on one
// accelerator, op by op on the roofline; a reorder of each batch's input when requests arrive
// in another layout than the kernels run in (the "hidden cost" of a data layout).
//
//   InferenceResult r = cost_inference(job);
//   r.facility_energy_per_inference_j   // J, host share and PUE included

#include <optional>
#include <string>

#include "dlcarbon/scenario.hpp"

namespace dlcarbon {

struct InferenceResult {
  // A batch whose weights and tensors do not fit the device's memory cannot run: ok false, the
  // reason says what it needs (a single run exits 2 after writing the result; a sweep point goes on).
  bool ok = true;
  std::string reason;
  // Memory a forward pass holds on the device: the weights, and the largest op's tensors (its
  // inputs and output, the weights aside: a weight product's input and output rows, another op's
  // bytes less the weights it owns), which must be resident together: a lower bound.
  double weight_bytes = 0;
  double activation_bytes = 0;
  double batch_time_s = 0;
  double reorder_time_s = 0;               // part of batch_time_s
  // Kernels a batch launches (batch_time_s holds launches x the device's launch time, which a
  // tensor-parallel replica's ranks each pay), and the products whose outputs a tensor-parallel
  // replica all-reduces (a layer's attention output and feed-forward down projection, Megatron's
  // row-parallel products; one a layer for a mixture's experts): how many, and their bytes in all.
  double launches = 0;
  // The ops on the full model width that every rank of a tensor-parallel replica runs whole (norms,
  // residual adds: Op::tensor_split false): their time less their launches, and their FLOPs' and
  // bytes' energy (a rank's share of the rest is 1/k; these are k times).
  double unsplit_s = 0;
  double unsplit_dynamic_j = 0;
  double tensor_allreduces = 0;
  double tensor_allreduce_bytes = 0;
  double device_energy_per_batch_j = 0;
  double it_energy_per_inference_j = 0;    // device + host share
  double facility_energy_per_inference_j = 0;
  double accelerator_time_s = 0;           // all inferences
  double it_energy_j = 0;
  double facility_energy_j = 0;
  double co2e_location_kg = 0;
  std::optional<double> co2e_market_kg;
};

InferenceResult cost_inference(const InferenceJob& job);

}  // namespace dlcarbon
