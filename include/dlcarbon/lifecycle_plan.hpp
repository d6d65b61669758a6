#pragma once
// From a scenario to a lifecycle plan (sim/lifecycle/plan.cpp): the cost room prices one
// replica of each deployment on each hardware of its mix; training jobs (and their retraining
// cadence) become runs placed in time.
//
//   LifecyclePlan plan = plan_lifecycle(scenario, footprints);  // footprints: one per training job

#include <vector>

#include "dlcarbon/accounting.hpp"
#include "dlcarbon/lifecycle.hpp"

namespace dlcarbon::lifecycle {

// One replica (cloud: `accelerators_per_replica` devices with their host share) or one device
// (edge) of deployment `d` on `hw`: busy and idle power, throughput, embodied carbon.
ServiceCost serving_cost(const Deployment& d, const Hardware& hw);
// serving_cost, with a design the hardware cannot run (std::invalid_argument) as InputError at the
// deployment's line.
ServiceCost serving_cost_or_input_error(const Deployment& d, const Hardware& hw);

LifecyclePlan plan_lifecycle(const Scenario& scenario, const std::vector<TrainingFootprint>& footprints);

}  // namespace dlcarbon::lifecycle
