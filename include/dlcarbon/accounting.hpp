#pragma once
// Training footprint in accounting mode: the job gives accelerator count, duration and a
// power; the arithmetic is that of Strubell et al. 2019 (Table 3) and Patterson et al.
// 2021 (Table 4):
//   accelerator time  T = n x duration
//   IT energy         E_IT = T x P_accelerator     (P includes the host share)
//   facility energy   E = PUE x E_IT
//   CO2e              = E x intensity (location-based; market-based where given)
//
//   TrainingFootprint f = account_training(job);
//   f.facility_energy_j / 3.6e9   // MWh

#include <optional>

#include "dlcarbon/scenario.hpp"

namespace dlcarbon {

struct TrainingFootprint {
  double duration_s = 0;
  double accelerator_time_s = 0;
  double power_per_accelerator_w = 0;  // average, host share included
  double it_energy_j = 0;
  double pue = 1;
  double facility_energy_j = 0;
  double intensity_location_kg_per_j = 0;
  double co2e_location_kg = 0;
  std::optional<double> intensity_market_kg_per_j;
  std::optional<double> co2e_market_kg;
};

// Average electrical power per accelerator for the job's power basis:
// per_accelerator as given; system / n; or TDP x utilisation + host overhead.
double power_per_accelerator_w(const TrainingJob& job);

TrainingFootprint account_training(const TrainingJob& job);

}  // namespace dlcarbon
