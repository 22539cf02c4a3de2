"""Multi-budget ("Matryoshka") training: one params tree trained for every visual-token budget.

A model config whose compressor sets `budgets` is trained at each of them, as the
training config's `multi_budget.mode` says:
  all: every example at every budget, the answer-token losses averaged over the budgets
    (M3, arXiv 2405.17430); the vision tower and the query pass run once per step.
  sample: one budget per step, drawn from (seed, step) alone (MQT-LLaVA, arXiv 2405.19315),
    so a resumed run draws what the uninterrupted one would; the step is compiled once
    per budget.
A single-budget checkpoint continues as a multi-budget model through `widen_params`.
"""
import copy

import jax.numpy as jnp
import numpy as np

from vlm_jax import errors
from vlm_jax.compressors import kernel_resize, regions
from vlm_jax.models import vision as vision_lib

MODES = ("all", "sample")
COMPRESSORS = ("quecc", "avgpool", "tokenpacker", "resampler")  # params that fit every budget


def budgets(model_config):
  """The budgets the model serves, ascending; () for a single-budget model."""
  return tuple(sorted(model_config.compressor.get("budgets") or ()))


def at_budget(model_config, budget):
  """A copy of `model_config` whose compressor runs at `budget` visual tokens."""
  config = copy.deepcopy(model_config)
  config.compressor.update(budget=int(budget), grid=None)
  return config


def sampled_budget(seed, step, model_budgets):
  """The budget `sample` mode trains step `step` at: a pure function of (seed, step)."""
  return model_budgets[np.random.default_rng((seed, step)).integers(len(model_budgets))]


def check(model_config, mode):
  """Raises BadValueError unless `mode` and the compressor's budgets can train together."""
  if mode not in MODES:
    raise errors.BadValueError(f"multi_budget.mode must be one of {MODES}, got {mode!r}")
  compressor = model_config.compressor
  served = budgets(model_config)
  if not served:
    return
  if compressor.name not in COMPRESSORS:
    raise errors.BadValueError(f"compressor {compressor.name!r} cannot serve several budgets; "
                               f"multi-budget compressors: {', '.join(COMPRESSORS)}")
  if len(set(served)) != len(served):
    raise errors.BadValueError(f"compressor.budgets repeats a budget: {served}")
  if compressor.get("grid") is not None or compressor.budget not in served:
    raise errors.BadValueError(f"a multi-budget compressor's budget must be one of its budgets "
                               f"{served} (and grid unset), got budget={compressor.budget}, "
                               f"grid={compressor.get('grid')}")


def widen_params(params, fresh, model_config):
  """A single-budget checkpoint's `params` -> those of multi-budget `model_config`.

  QueCC's kernel becomes the base kernel that resizes back to it exactly
  (kernel_resize.base_kernel), so the checkpoint's own budget is served unchanged; the
  resampler keeps its queries as the prefix, the rest (up to the largest budget) from
  `fresh`, the new model's initial params. Other compressors' params fit every budget.
  """
  compressor = dict(params["compressor"])
  name = model_config.compressor.name
  if name == "quecc":
    g = vision_lib.grid_size(model_config.vision)
    side = regions.largest_region_side(g, budgets(model_config))
    conv = compressor["q_downsample"]
    compressor["q_downsample"] = {
        **conv, "kernel": kernel_resize.base_kernel(conv["kernel"], (side, side))}
  elif name == "resampler":
    new = fresh["compressor"]["queries"]
    compressor["queries"] = jnp.concatenate(
        [compressor["queries"], new[len(compressor["queries"]):]])[:len(new)]
  return {**params, "compressor": compressor}
