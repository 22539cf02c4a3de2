"""The training config: defaults, validation, and `key=value` overrides.

A training config file (configs/train/) returns a ConfigDict with a `model` (a
VLM config, configs/models/vlm.py), a `data` part (vlm_jax.data.default_config)
and the fields below.
"""
import ast

import ml_collections
from ml_collections.config_dict import placeholder

from vlm_jax.data import config as data_config
from vlm_jax.train import multi_budget

PARAM_GROUPS = ("vision", "compressor", "projector", "llm")


def default_config():
  """Every training field with its default; `model` must be set."""
  return ml_collections.ConfigDict(dict(
      model=None,
      data=data_config.default_config(),
      seed=0,
      batch_size=8,  # global: summed over hosts (each host reads batch_size / hosts)
      microbatches=1,  # gradient accumulation: the step scans over this many slices
      # Positions per device whose float32 logits the loss holds at once: it scans the LM
      # head and cross-entropy over chunks of them; 0 or None: all (micro)batch positions.
      loss_chunk_size=2048,
      # With model.compressor.budgets: `all` trains every example at every budget (losses
      # averaged), `sample` one budget per step drawn from (seed, step) (train/multi_budget.py).
      multi_budget=dict(mode="all"),
      total_steps=placeholder(int),  # default: num_epochs passes over the data
      num_epochs=1.0,
      optim=dict(
          # Per top-level param group; a learning rate of 0 freezes the group.
          learning_rates=dict(vision=0.0, compressor=1e-3, projector=1e-3, llm=0.0),
          warmup_fraction=0.03,  # of total_steps, linear from 0, then cosine to 0
          weight_decay=0.0,  # decoupled (AdamW); never on biases and norm scales
          b1=0.9,
          b2=0.999,
          eps=1e-8,
          clip_norm=1.0,  # global gradient norm over the trained params; 0 disables
      ),
      # -1: the remaining devices; num_devices: only the first ones (one process only)
      mesh=dict(data=-1, fsdp=1, tensor=1, num_devices=placeholder(int)),
      checkpoint=dict(every=1000, keep=3, async_save=True),
      log_every=10,
      init_from=placeholder(str),  # a training workdir (latest checkpoint) or a `vlm` checkpoint
      init_llm_from=placeholder(str),  # a converted `llm` checkpoint (vlm-jax convert)
      init_vision_from=placeholder(str),  # a converted `vision` checkpoint
      peak_flops_per_device=placeholder(float),  # for MFU; default by device kind
      # XLA options for the jitted init and step, e.g. {"xla_backend_optimization_level": 0}
      # compiles CPU programs several times faster (and runs them slower).
      compiler_options={},
  ))


def resolve(config):
  """`config` over the defaults (data included); unknown keys and bad values raise."""
  resolved = default_config()
  _merge(resolved, config, "")
  resolved.data = data_config.resolve(resolved.data, fallbacks=False)
  if resolved.model is None or resolved.model.get("kind") != "vlm":
    raise ValueError("config.model must be a VLM model config (kind='vlm'), "
                     "e.g. configs.preset('vlm:...')")
  unknown = sorted(set(resolved.optim.learning_rates) - set(PARAM_GROUPS))
  if unknown:
    raise ValueError(f"optim.learning_rates names unknown param groups {unknown}; "
                     f"known: {PARAM_GROUPS}")
  if any(lr < 0 for lr in resolved.optim.learning_rates.values()):
    raise ValueError(f"learning rates must be >= 0, got {dict(resolved.optim.learning_rates)}")
  if not any(lr > 0 for lr in resolved.optim.learning_rates.values()):
    raise ValueError("every param group is frozen (all learning rates 0): nothing to train")
  for name in ("batch_size", "microbatches", "log_every"):
    if resolved[name] < 1:
      raise ValueError(f"{name} must be >= 1, got {resolved[name]}")
  if (resolved.loss_chunk_size or 0) < 0:
    raise ValueError(f"loss_chunk_size must be >= 0 (0: no chunks), "
                     f"got {resolved.loss_chunk_size}")
  if resolved.batch_size % resolved.microbatches:
    raise ValueError(f"batch_size={resolved.batch_size} is not divisible by "
                     f"microbatches={resolved.microbatches}")
  if resolved.checkpoint.every < 1 or resolved.checkpoint.keep < 1:
    raise ValueError(f"checkpoint.every and checkpoint.keep must be >= 1, "
                     f"got {dict(resolved.checkpoint)}")
  multi_budget.check(resolved.model, resolved.multi_budget.mode)
  if not 0 <= resolved.optim.warmup_fraction <= 1:
    raise ValueError(f"optim.warmup_fraction must lie in [0, 1], "
                     f"got {resolved.optim.warmup_fraction}")
  return resolved


def _merge(into, config, prefix):
  for key, value in config.items():
    if key not in into:
      raise ValueError(f"unknown training config key {prefix + key!r}; "
                       f"known: {sorted(into.keys())}")
    if isinstance(into[key], ml_collections.ConfigDict) and key not in ("model", "data",
                                                                        "compiler_options"):
      _merge(into[key], value, f"{prefix}{key}.")
    else:
      into[key] = value


def apply_overrides(config, overrides):
  """Sets `a.b.c=value` items on `config` in place; values are Python literals or strings.

  The value is cast to the type of the field it replaces (so `lr=1` sets a float),
  and an unknown key raises KeyError.
  """
  for item in overrides:
    path, sep, text = item.partition("=")
    if not sep:
      raise ValueError(f"override {item!r} is not of the form key=value")
    *parents, name = path.split(".")
    node = config
    for i, parent in enumerate(parents):
      if parent not in node or not isinstance(node[parent], ml_collections.ConfigDict):
        raise KeyError(f"override {item!r}: {'.'.join(parents[:i + 1])!r} is not a config group")
      node = node[parent]
    if name not in node:
      raise KeyError(f"override {item!r}: no field {name!r} in "
                     f"{'.'.join(parents) or 'the config'}; known: {sorted(node.keys())}")
    node[name] = _cast(_literal(text), node[name], item)
  return config


def _literal(text):
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _cast(value, current, item):
  if current is None or value is None:
    return value
  if isinstance(current, bool) != isinstance(value, bool):
    raise ValueError(f"override {item!r}: expected a bool like the field's {current!r}")
  if isinstance(current, float) and isinstance(value, int):
    return float(value)
  if isinstance(current, tuple) and isinstance(value, list):
    return tuple(value)
  if isinstance(current, str) and not isinstance(value, str):
    return str(value)
  return value
