"""Shared by the inference benchmarks: model set-up, interleaved timing, output."""
import json
import os
import platform
import time


def parse_ints(text):
  """'1,4,16' -> [1, 4, 16], each positive."""
  values = [int(v) for v in text.split(",") if v.strip()]
  if not values or min(values) < 1:
    raise ValueError(f"need a comma-separated list of positive integers, got {text!r}")
  return values


def model_config(spec, dtype):
  """A preset spec ('tiny_llm:size=s', 'vlm:llm=...,vision=...') with compute dtype `dtype`."""
  from vlm_jax import configs
  config = configs.preset(spec)
  if config.kind not in ("llm", "vlm"):
    raise ValueError(f"{spec!r} is a {config.kind} model; need an llm preset or a vlm spec")
  config.dtype = dtype
  return config


def random_params(config, seed=0):
  """Random params of model `config` (see `random_like`) in its compute dtype."""
  from vlm_jax import models
  return random_like(lambda rng: models.init(config, rng), config.dtype, seed)


def random_like(init, dtype, seed=0):
  """Params shaped like those init(rng) makes (boxed or not), unboxed, on the device.

  Timing needs the shapes, not an initializer's distribution: norm scales are 1 and
  every other float N(0, 0.02²) in `dtype` (as served), drawn on the host leaf by leaf,
  which is much faster than compiling `init` and keeps one leaf in host memory at a time.
  """
  import flax.linen as nn
  import jax
  import numpy as np

  from vlm_jax.models.layers import dtype_of

  dtype = dtype_of(dtype)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    if not np.issubdtype(leaf.dtype, np.floating):
      return jax.device_put(np.zeros(leaf.shape, leaf.dtype))
    if getattr(path[-1], "key", None) == "scale":
      value = np.ones(leaf.shape, np.float32)
    else:
      value = rng.standard_normal(leaf.shape, np.float32) * np.float32(0.02)
    return jax.device_put(value.astype(dtype))

  abstract = nn.unbox(jax.eval_shape(init, jax.random.PRNGKey(0)))
  return jax.tree_util.tree_map_with_path(fill, abstract)


def time_interleaved(calls, repeats, settle_s=0.05):
  """calls: {name: fn() that returns once its work is done} -> {name: [seconds] * repeats}.

  Every call runs once untimed first (compilation, warm-up); then the repeats go round
  the calls in turn, so drift in the machine's speed touches every one alike. Each timed
  call starts settle_s after the previous one ended: worker threads spin a while after
  their work (PyTorch's OpenMP threads, XLA's pool), and on a 2-core machine that spin
  would otherwise be billed to whichever call comes next.
  """
  if repeats < 1:
    raise ValueError(f"repeats must be >= 1, got {repeats}")
  for fn in calls.values():
    fn()
  seconds = {name: [] for name in calls}
  for _ in range(repeats):
    for name, fn in calls.items():
      time.sleep(settle_s)
      start = time.perf_counter()
      fn()
      seconds[name].append(time.perf_counter() - start)
  return seconds


def _cpu_name():
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown CPU"


def jax_device():
  """The device JAX runs on, in words: kind, count, and for a CPU its model and cores."""
  import jax
  device = jax.devices()[0]
  words = f"{device.platform} {device.device_kind}"
  if device.platform == "cpu":
    words = f"cpu ({_cpu_name()}, {os.cpu_count()} cores)"
  return words


def load_average():
  """The machine's 1-minute load average: timings from a busy machine are noisy."""
  return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def markdown_table(header, rows):
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
  return "\n".join(lines)


def write_json(path, result):
  if path:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
      json.dump(result, f, indent=2)
