#pragma once
// Inference from first principles: the forward graph at the job's batch size on one
// accelerator, op by op on the roofline; a reorder of each batch's input when requests arrive
// in another layout than the kernels run in (the "hidden cost" of a data layout).
//
//   InferenceResult r = cost_inference(job);
//   r.facility_energy_per_inference_j   // J, host share and PUE included

#include <optional>

#include "dlcarbon/scenario.hpp"

namespace dlcarbon {

struct InferenceResult {
  double batch_time_s = 0;
  double reorder_time_s = 0;               // part of batch_time_s
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
