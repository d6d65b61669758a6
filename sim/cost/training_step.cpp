// A training job from first principles (docs/hardware-model.md, "Training step" and "Job
// overheads"): cost_training_step runs the phases of one StepModel (step_model.hpp: per device and
// microbatch every op of the graph forward and backward on the roofline, layers partitioned over
// pipeline stages, GEMMs split over the tensor group; the step is the schedule plus what
// communication is not hidden plus the optimizer, of the device that ends last); then where a step
// goes (step_components), the job's overheads (checkpoints, failures, evaluation, repeated runs)
// and simulate_training, which gives a job's footprint in either mode.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "dlcarbon/training_cost.hpp"
#include "step_model.hpp"

namespace dlcarbon {

StepCost cost_training_step(const TrainingJob& job) {
  cost_detail::StepModel s(job);
  if (!s.layout()) return s.c;
  s.cost_ops();
  s.run_schedule();
  s.reduce_and_update();
  s.memory();
  s.power();
  return s.c;
}

double runs_per_step(const StepCost& c, const OpCostRow& row) {
  if (row.phase != "fwd" && row.phase != "bwd") return 1.0;
  return static_cast<double>(c.microbatches) / static_cast<double>(std::max<std::int64_t>(1, c.pipeline));
}

std::vector<StepComponent> step_components(const StepCost& c) {
  if (!c.fits) return {};
  return {{"compute", c.compute_s},
          {"tensor communication", c.tensor_comm_s},
          {"context communication", c.context_comm_s},
          {"pipeline communication", c.pipeline_comm_s},
          {"expert all-to-all", c.expert_comm_s},
          {"pipeline bubble", c.bubble_s},
          {"data-parallel communication (exposed)", c.data_comm_s},
          {"overlap contention", c.contention_s},
          {"optimizer", c.optimizer_s}};
}

namespace {

// The time to write one checkpoint (weights and optimizer state over the checkpoint bandwidth; 0
// without one).
double checkpoint_write_s(const TrainingJob& job, const StepCost& c) {
  const JobOverheads& o = job.overheads;
  if (!o.checkpoint_interval_s || !o.checkpoint_bandwidth_bytes_per_s) return 0;
  const double state = cost_detail::optimizer_state_bytes(job.parallelism ? job.parallelism->optimizer : "adam");
  // Weights at the compute precision and the optimizer's state, whose fp32 master copy an fp32
  // job does not keep apart (as the memory check counts it; since session 44, a review: 2 B
  // more a parameter whatever the precision).
  // (8-bit jobs keep 16-bit weights, as the memory check counts them.)
  const double weight_bytes = std::max(2.0, hardware::bytes_per_value(job.precision));
  const double size = c.parameters * (weight_bytes + (weight_bytes >= 4 ? std::max(0.0, state - 4) : state));
  return size / *o.checkpoint_bandwidth_bytes_per_s;
}

std::vector<OverheadRow> job_overheads(const TrainingJob& job, const StepCost& c) {
  const JobOverheads& o = job.overheads;
  const double n = static_cast<double>(job.accelerators);
  const hardware::DeviceModel dev = hardware::make_device_model(job.hardware);
  const double busy_w = c.power_per_accelerator_w * n;       // training draw, all accelerators
  const double waiting_w = (dev.static_w + dev.host_w) * n;  // powered, waiting on storage or restart
  std::vector<OverheadRow> rows;
  const double t0 = c.steps * c.step_s;
  rows.push_back({"training", t0, t0 * busy_w});
  double ramp_s = 0;      // the batch ramp-up's extra time (below)
  double ramp_steps = 0;  // and the steps its smaller batches add
  if (job.parallelism && job.parallelism->batch_rampup && c.data > 0) {
    // The ramp's sequences, already in t0 at the full batch's time a sequence, cost what their
    // smaller steps do: the extra over t0, sum over the ramp's batches b of (its sequences) x
    // (step(b) / b - step(B) / B). Each batch is costed as a step of its own (at most 24 of them,
    // spread over the ramp; the rest interpolated between their neighbours in 1 / b, in which a
    // step's fixed parts, the pipeline's fill and drain, the reductions and the optimizer, are
    // linear).
    const auto& ramp = *job.parallelism->batch_rampup;
    const double B = static_cast<double>(job.parallelism->global_batch);
    const double inc = static_cast<double>(ramp.increment > 0 ? ramp.increment : c.data * job.parallelism->microbatch);
    const auto count = std::max<std::int64_t>(1, std::llround((B - static_cast<double>(ramp.start)) / inc));
    const double per_batch = ramp.samples / static_cast<double>(count);
    // Time and energy a sequence (all accelerators, host share included, as the training row).
    const auto energy_of = [&](const StepCost& s) { return s.power_per_accelerator_w * s.step_s * n; };
    const std::pair<double, double> full{c.step_s / B, energy_of(c) / B};
    const auto per_sequence = [&](std::int64_t j) {
      TrainingJob smaller = job;
      smaller.parallelism->global_batch = ramp.start + static_cast<std::int64_t>(static_cast<double>(j) * inc);
      smaller.parallelism->batch_rampup.reset();
      const StepCost s = cost_training_step(smaller);
      const double b = static_cast<double>(smaller.parallelism->global_batch);
      return s.fits ? std::pair<double, double>{s.step_s / b, energy_of(s) / b} : full;
    };
    const std::int64_t points = std::min<std::int64_t>(count, 24);
    std::vector<std::int64_t> at;
    std::vector<std::pair<double, double>> f;
    for (std::int64_t k = 0; k < points; ++k) {
      const double share = points == 1 ? 0.0 : static_cast<double>(k) / static_cast<double>(points - 1);
      at.push_back(std::llround(share * static_cast<double>(count - 1)));
      f.push_back(per_sequence(at.back()));
    }
    double extra_energy = 0;
    for (std::int64_t j = 0, k = 0; j < count; ++j) {
      while (k + 1 < points && at[static_cast<std::size_t>(k + 1)] <= j) ++k;
      auto value = f[static_cast<std::size_t>(k)];
      if (k + 1 < points && at[static_cast<std::size_t>(k)] < j) {
        const auto inverse = [&](std::int64_t i) { return 1 / (static_cast<double>(ramp.start) + static_cast<double>(i) * inc); };
        const double a = inverse(at[static_cast<std::size_t>(k)]), b = inverse(at[static_cast<std::size_t>(k + 1)]);
        const double w = (inverse(j) - a) / (b - a);
        value.first += (f[static_cast<std::size_t>(k + 1)].first - value.first) * w;
        value.second += (f[static_cast<std::size_t>(k + 1)].second - value.second) * w;
      }
      ramp_s += per_batch * std::max(0.0, value.first - full.first);
      ramp_steps += per_batch * std::max(0.0, 1 / (static_cast<double>(ramp.start) + static_cast<double>(j) * inc) - 1 / B);
      extra_energy += per_batch * std::max(0.0, value.second - full.second);
    }
    rows.push_back({"batch ramp-up", ramp_s, extra_energy, ramp_steps});
  }
  double ckpt_s = 0, interval = 0;
  const double write_s = checkpoint_write_s(job, c);
  if (o.checkpoint_interval_s) {
    interval = *o.checkpoint_interval_s;
    // One checkpoint an interval of training, at most one a step: a checkpoint is saved between
    // steps (since session 46, a review: an interval shorter than a step charged more checkpoints
    // than steps).
    const double checkpoints = std::min(std::floor((t0 + ramp_s) / interval), std::floor(c.steps + ramp_steps));
    ckpt_s = checkpoints * write_s;
    rows.push_back({"checkpointing", ckpt_s, ckpt_s * waiting_w});
  }
  const double eval_s = o.evaluation_fraction * t0;
  if (eval_s > 0) rows.push_back({"evaluation", eval_s, eval_s * busy_w});
  if (o.mtbf_s) {
    const double span = t0 + ramp_s + ckpt_s + eval_s;
    const double failures = n / *o.mtbf_s * span;
    // A failure loses the work since the last checkpoint: half an interval and a checkpoint's write
    // on average (Young 1974, Daly 2006: a failure falls anywhere in the cycle of work and write;
    // since session 46, a review: the interval alone), or half the run where the run is shorter
    // than that (since session 44, a review: a 30-day interval on a one-day run lost 214 % of it).
    // (A checkpoint at most once a step: an interval shorter than a step is the step.)
    const double lost = failures * std::min(std::max(interval, c.step_s) + write_s, span) / 2;
    const double restarts = failures * o.restart_s;
    rows.push_back({"lost work", lost, lost * busy_w});
    rows.push_back({"restarts", restarts, restarts * waiting_w});
  }
  // Downtime the run's log reports apart from failures (hangs, maintenance): held, not training.
  if (o.downtime_s > 0) rows.push_back({"downtime", o.downtime_s, o.downtime_s * waiting_w});
  if (o.runs > 1) {
    double time = 0, energy = 0;
    for (const auto& row : rows) {
      time += row.time_s;
      energy += row.energy_j;
    }
    const double extra = static_cast<double>(o.runs - 1);
    rows.push_back({"repeated runs", extra * time, extra * energy});
  }
  return rows;
}

}  // namespace

TrainingResult simulate_training(const TrainingJob& job) {
  TrainingResult r;
  if (job.duration_given) {
    r.mode = "accounting";
    r.footprint = account_training(job);
    return r;
  }
  r.mode = "first-principles";
  StepCost c = cost_training_step(job);
  r.ok = c.fits;
  r.reason = c.reason;
  TrainingJob predicted = job;
  if (c.fits) r.overheads = job_overheads(job, c);
  // First order (Young/Daly) holds while failures are rare beside the work a failure loses and a
  // restart; where the job fails once or more in that time on average (an interval, or the run
  // where it is shorter, and a restart), a run may never finish: it cannot run, and says why (since
  // session 44, a review: a failure a minute gave a 25-year run).
  const JobOverheads& o = job.overheads;
  if (c.fits && o.mtbf_s && o.checkpoint_interval_s) {
    double span = 0;  // the run without failures: training, ramp-up, checkpoints, evaluation
    for (const auto& row : r.overheads) {
      if (row.item == "training" || row.item == "batch ramp-up" || row.item == "checkpointing" || row.item == "evaluation") span += row.time_s;
    }
    const double system_mtbf = *o.mtbf_s / static_cast<double>(job.accelerators);
    const double exposed = std::min(std::max(*o.checkpoint_interval_s, c.step_s) + checkpoint_write_s(job, c), span) + o.restart_s;
    if (system_mtbf <= exposed) {
      char why[320];
      std::snprintf(why, sizeof why,
                    "fails every %.3g s on average (mtbf / accelerators), not longer than a checkpoint interval and its "
                    "write (or the run, where shorter) and a restart (%.3g s): the first-order failure model does not hold and the run may never finish",
                    system_mtbf, exposed);
      c.fits = false;
      c.reason = why;
      r.ok = false;
      r.reason = why;
      r.overheads.clear();
    }
  }
  if (c.fits) {
    double time = 0, energy = 0;
    for (const auto& row : r.overheads) {
      time += row.time_s;
      energy += row.energy_j;
    }
    predicted.duration_s = time;
    predicted.power = {PowerBasis::per_accelerator, time > 0 ? energy / (time * static_cast<double>(job.accelerators)) : 0};
  } else {
    predicted.duration_s = 0;
    predicted.power = {PowerBasis::per_accelerator, 0};
  }
  r.footprint = account_training(predicted);
  r.step = std::move(c);
  return r;
}

}  // namespace dlcarbon
