"""Training metrics: throughput, model FLOPs utilization, and where they are written."""
import sys

import jax
import numpy as np

from vlm_jax import compressors, flops
from vlm_jax.models import vision as vision_lib

# Dense bfloat16 peak FLOP/s per chip, by (a prefix of) jax's device_kind.
PEAK_FLOPS = {
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,  # v5e
    "TPU v5": 459e12,  # v5p
    "TPU v6 lite": 918e12,  # v6e
    "NVIDIA H100": 989e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100": 312e12,
}


def peak_flops_per_device(device_kind, override=None):
  """Peak FLOP/s of one device: `override`, else the table's longest matching prefix, else None."""
  if override:
    return override
  matches = [kind for kind in PEAK_FLOPS if device_kind.startswith(kind)]
  return PEAK_FLOPS[max(matches, key=len)] if matches else None


def throughput(seconds, steps, tokens, model_flops, peak):
  """Rates over `steps` steps taking `seconds`, in which the model saw `tokens` (text
  and visual) and spent `model_flops`; `peak`: the mesh's peak FLOP/s or None."""
  rates = {"perf/steps_per_s": steps / seconds, "perf/tokens_per_s": tokens / seconds}
  if peak:
    rates["perf/mfu"] = model_flops / seconds / peak
  return rates


class StepCost:
  """Tokens and model FLOPs (vlm_jax.flops) of logged steps -> tokens/s and MFU."""

  def __init__(self, config, model_config, mesh):
    self.model_config = model_config
    self.mode = config.multi_budget.mode
    self.batch_size = config.batch_size
    self.visual_tokens = _visual_tokens(model_config, self.mode)
    self.train_llm = config.optim.learning_rates.llm > 0
    per_device = peak_flops_per_device(mesh.devices.flat[0].device_kind,
                                       config.peak_flops_per_device)
    self.peak = per_device * mesh.devices.size if per_device else None

  def rates(self, logged, seconds):
    """logged: the step metrics (text_tokens, question_tokens) of `seconds` of training."""
    b, v = self.batch_size, self.visual_tokens
    text = np.array([m["text_tokens"] for m in logged]) - b  # the placeholders are not text
    question = np.array([m["question_tokens"] for m in logged])
    per_example = flops.multi_budget_train_flops_per_example(
        self.model_config, text / b, self.mode, train_llm=self.train_llm,
        question_tokens=question / b)
    return throughput(seconds, len(logged), float(np.sum(text) + len(logged) * b * v),
                      float(np.sum(b * per_example)), self.peak)


class MetricWriter:
  """Scalars to TensorBoard event files and to stdout under a tqdm bar; inert when disabled."""

  def __init__(self, logdir, *, total_steps, initial_step, enabled):
    self.enabled = enabled
    if enabled:
      import tensorboardX
      import tqdm
      self._events = tensorboardX.SummaryWriter(str(logdir))
      self._bar = tqdm.tqdm(total=total_steps, initial=initial_step, unit="step",
                            file=sys.stdout, dynamic_ncols=True,
                            disable=None)  # no bar when stdout is a file, only the lines

  def write(self, scalars):
    """Event-file scalars of one step: `scalars` = {"step": step, name: value...}."""
    if self.enabled:
      for name, value in scalars.items():
        if name != "step":
          self._events.add_scalar(name, value, scalars["step"])

  def report(self, scalars):
    """Moves the bar to scalars["step"] and prints the other scalars above it."""
    if self.enabled:
      step = scalars["step"]
      self._bar.update(step - self._bar.n)
      self._bar.set_postfix(loss=f"{scalars['loss']:.4f}")
      self._bar.write(f"step {step}: " + ", ".join(
          f"{k}={v:.4g}" for k, v in scalars.items() if k != "step"), file=sys.stdout)
      self._events.flush()

  def close(self):
    if self.enabled:
      self._bar.close()
      self._events.close()


def is_logging_process():
  return jax.process_index() == 0


def _visual_tokens(model_config, mode):
  """Visual tokens the LLM reads per example and step: its budget's, or with `budgets`
  their sum (mode `all`) or mean (mode `sample`)."""
  budgets = model_config.compressor.get("budgets")
  if budgets:
    return sum(budgets) / (1 if mode == "all" else len(budgets))
  return int(np.prod(compressors.grid_shape(model_config.compressor,
                                            vision_lib.grid_size(model_config.vision))))
