#include "dlcarbon/accounting.hpp"

namespace dlcarbon {

double power_per_accelerator_w(const TrainingJob& job) {
  switch (job.power.basis) {
    case PowerBasis::per_accelerator: return job.power.value;
    case PowerBasis::system: return job.power.value / static_cast<double>(job.accelerators);
    case PowerBasis::utilisation: return job.hardware.tdp_w * job.power.value + job.hardware.host_overhead_w;
  }
  return 0;
}

TrainingFootprint account_training(const TrainingJob& job) {
  TrainingFootprint f;
  f.duration_s = job.duration_s;
  f.accelerator_time_s = static_cast<double>(job.accelerators) * job.duration_s;
  f.power_per_accelerator_w = power_per_accelerator_w(job);
  f.it_energy_j = f.accelerator_time_s * f.power_per_accelerator_w;
  f.pue = job.datacenter.pue;
  f.facility_energy_j = f.pue * f.it_energy_j;
  f.intensity_location_kg_per_j = job.datacenter.region.intensity_kg_per_j;
  f.co2e_location_kg = f.facility_energy_j * f.intensity_location_kg_per_j;
  if (job.datacenter.market_intensity_kg_per_j) {
    f.intensity_market_kg_per_j = *job.datacenter.market_intensity_kg_per_j;
    f.co2e_market_kg = f.facility_energy_j * *f.intensity_market_kg_per_j;
  }
  return f;
}

}  // namespace dlcarbon
