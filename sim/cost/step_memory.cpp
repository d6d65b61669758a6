// The training step's last phases (step_model.hpp): the memory each pipeline device needs, against
// the part's (a job that does not fit is a result with the reason); the model FLOPs, MFU, power
// and energy of the step.

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "step_model.hpp"
#include "dlcarbon/text.hpp"

namespace dlcarbon::cost_detail {

void StepModel::memory() {
  // Bytes per parameter: weights at the compute precision, gradients at theirs; the optimizer
  // state includes an fp32 master copy only when the weights are narrower than fp32.
  // Each is held by the parameters it is sharded over (StepModel::held_on, step_schedule.cpp).
  // DualPipe keeps one more microbatch in flight and two stages' weights on each device; both
  // copies hold gradients until they are summed once a step (that exchange between the two ranks
  // holding a stage is not charged).
  const double in_flight = static_cast<double>(std::min(c.microbatches, c.pipeline + (p.dualpipe ? 1 : 0)));
  const double copies = p.dualpipe ? 2.0 : 1.0;
  // Sharded stages also hold what a unit (a layer, or the root unit with an embedding table) needs
  // whole while it runs (since session 38, from a review; before, only the shards were counted, which
  // let a ZeRO-3 job pass with less than two layers' room to spare): ZeRO-3 gathers the running
  // unit's parameters and prefetches the next one's (PyTorch FSDP's default backward prefetch,
  // DeepSpeed's prefetch bucket), and ZeRO-2 and -3 hold the running unit's gradient whole until its
  // reduce-scatter.
  const auto unit_on = [&](std::size_t d) {
    const double table = (d == 0 || d == devices - 1) ? core_copies * embedding_params / tp : 0.0;
    return std::max(held_on(d, false) / (on_device(device_layers, d) + 1), std::min(held_on(d, false), table));
  };
  const auto states_on = [&](std::size_t d) {
    // (Over one rank nothing is sharded, so nothing is gathered or held twice; since session 44, a
    // review: a ZeRO-3 job on one data rank had been charged its running units again.)
    const double working =
        shard > 1 ? (p.zero_stage >= 3 ? 2 * bytes_per_value : 0.0) + (p.zero_stage >= 2 ? grad_value_bytes : 0.0) : 0.0;
    return copies * bytes_per_value * held_on(d, p.zero_stage >= 3) + copies * grad_value_bytes * held_on(d, p.zero_stage >= 2) +
           (bytes_per_value >= 4 ? std::max(0.0, state_bytes - 4) : state_bytes) * held_on(d, p.zero_stage >= 1) +
           working * unit_on(d);
  };
  // Each device keeps its own layers' activations for the microbatches it has in flight and its own
  // other ops' (the embeddings' on the first, for each microbatch in flight, below; the head's and
  // the loss's on the last, once); with
  // full recomputation only each layer's input, and the stack's final norm on the last device.
  // In flight: 1F1B (and zero-bubble 1F1B) device d runs p - d forwards before its first backward;
  // interleaved, Megatron-LM's schedule runs 2 (p - d - 1) + (v - 1) p warm-up chunks and one more,
  // each of its layers / v (Narayanan et al. 2021: interleaving raises the first stage's
  // activations by about 1 + 1 / v; until session 28 every device was charged the first stage's
  // p microbatches, interleaved or not); at most the step's m microbatches. Under DualPipe a device
  // holds two stages: their average for the microbatches in flight, both stages' other ops.
  // The ops before a stack (the embeddings on the first device, an encoder-decoder's decoder
  // embeddings where the decoder starts) keep what they keep for each microbatch their chunk has in
  // flight, as the layers do; the head's and the loss's backward follows their forward at once
  // (Korthikanti et al. 2022, Sec. 4.3: the first stage holds p microbatches' embedding dropout
  // masks; since session 46, a review: kept once). Interleaved, from Megatron-LM's order (its
  // in-flight counts repeat after the first groups of p microbatches: 4 p run).
  std::vector<double> lead_held;
  if (v > 1 && !paired && devices > 1) {
    const auto peak = cost_detail::interleaved_peak_held(c.pipeline, static_cast<std::int64_t>(v),
                                                         std::min<std::int64_t>(c.microbatches, 4 * c.pipeline), {chunk_lead});
    if (!peak.empty()) lead_held = peak.front();
  }
  double activations = 0, model_states = 0;  // of the device that needs the most
  for (std::size_t d = 0; d < devices; ++d) {
    // The device's microbatches in flight, in whole-device units (a chunk is 1 / v of it).
    double flight = in_flight;
    if (!paired) {
      const double m_all = static_cast<double>(c.microbatches), rank = static_cast<double>(d);
      flight = v > 1 ? std::min(m_all * v, 2 * (pp - rank - 1) + (v - 1) * pp + 1) / v : std::min(m_all, pp - rank);
    }
    const double lead = (paired ? 2.0 : 1.0) * on_device(dev_saved_lead, d);
    const double lead_in_flight = !lead_held.empty() ? lead_held[d] : lead * flight;
    const double other = (paired ? 2.0 : 1.0) * on_device(dev_saved_other, d) - lead + lead_in_flight;  // both stages' under DualPipe
    // Uneven chunks: the most the device's chunks in flight keep at once, from the schedule's order.
    double held = (schedule.ok ? schedule.peak_held[0][d] : on_device(dev_saved, d) * flight) + other;
    if (p.recompute) {
      const double inputs = on_device(device_layers, d);
      const double sp = p.sequence_parallel ? tp : 1.0;
      const double stack_end = on_device(dev_stack_end, d);
      // (The final norm's for each microbatch in flight on plain 1F1B: an encoder's may sit on a
      // middle stage. Interleaved or paired, the last chunk's backward follows its forward at
      // once: one, as for a decoder's on the last stage; a review of session 43.)
      const double norm_flight = v > 1 || paired ? 1.0 : flight;
      held = (schedule.ok ? schedule.peak_held[1][d] : on_device(dev_inputs, d) * flight) / sp +
             (paired ? 2.0 : 1.0) * stack_end * norm_flight + other;
      // While a layer's backward runs, its forward has been run again and its activations are
      // held: one layer's, one microbatch (the device's layers taken as equal; since session 30),
      // less its input, the checkpoint counted above; the final norm, kept above, is not a layer's
      // (since session 43, a review: it had been averaged into the layers' too).
      const double input = inputs > 0 ? on_device(dev_inputs, d) / inputs / sp : 0.0;
      if (inputs > 0) held += std::max(0.0, (on_device(dev_saved, d) - stack_end) / inputs - input);
    }
    c.stages[d].activation_bytes = held;
    if (states_on(d) + held > c.memory_per_device_bytes) {
      c.memory_per_device_bytes = states_on(d) + held;
      model_states = states_on(d);
      activations = held;
    }
  }
  if (dev.memory_bytes > 0 && c.memory_per_device_bytes > dev.memory_bytes) {
    c.fits = false;
    c.reason = "does not fit: needs " + text::byte_size(c.memory_per_device_bytes) + " per device (weights, gradients and optimizer " +
               text::byte_size(model_states) + ", activations " + text::byte_size(activations) + "), " +
               text::more_than(c.memory_per_device_bytes, job.hardware.id, dev.memory_bytes);
    // On a TPU, XLA rematerializes activations where a program would not fit its memory (its
    // HloRematerialization pass), at a cost the model does not size: runs the check refuses have
    // trained so (docs/hardware-model.md, "Training step"). Full recomputation costs the most it can
    // take (since session 55).
    if (job.hardware.kind == "tpu" && !p.recompute && activations > 0) {
      c.reason += "; on a TPU, XLA rematerializes activations to fit where it can: parallelism.recompute: full costs the most "
                  "that can take";
    }
  }
}

void StepModel::power() {
  const double model_forward = g.model_forward_flops();
  // (Under context parallelism a device's graph is 1 / cp of each sequence.)
  c.model_flops_per_step = 3 * model_forward * static_cast<double>(c.microbatches * c.data * cp) * filled;
  c.full_attention_flops_ratio = model_forward > 0 ? g.forward_flops_full_attention() / model_forward : 1;
  c.mfu = c.model_flops_per_step / (c.step_s * static_cast<double>(n) * dev.peak(job.precision));
  // The average device: busy for its share of the work, waiting (bubbles, exposed communication,
  // the pace of the busiest stage) at static power for the rest of the step.
  // (The average device's optimizer: the parameters over all the devices.)
  double average_opt_params = 0;
  for (std::size_t d = 0; d < devices; ++d) average_opt_params += held_on(d, p.zero_stage >= 1) / static_cast<double>(devices);
  const auto average_opt = hardware::kernel_time(dev, "fp32", 12 * average_opt_params, traffic_bytes * average_opt_params, false);
  const double busy_s = static_cast<double>(c.microbatches) * average_busy_s + average_opt.seconds;
  const double opt_energy = hardware::kernel_energy(dev, "fp32", 12 * average_opt_params, traffic_bytes * average_opt_params,
                                                    average_opt.seconds, false);
  const double device_energy = static_cast<double>(c.microbatches) * busy_energy + opt_energy +
                               dev.static_w * std::max(0.0, c.step_s - busy_s);
  c.device_power_w = device_energy / c.step_s;
  c.power_per_accelerator_w = c.device_power_w + dev.host_w;
  c.energy_per_step_j = device_energy * static_cast<double>(n);
}

}  // namespace dlcarbon::cost_detail
