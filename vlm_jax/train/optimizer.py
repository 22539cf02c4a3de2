"""AdamW per param group: warmup + cosine schedules, clipping, frozen groups.

The top-level param groups (vision, compressor, projector, llm) each get their
own learning rate; a group at learning rate 0 is frozen: `optax.set_to_zero`,
no optimizer state. Weight decay skips biases and norm scales.
"""
import math

import jax
import optax

FROZEN = "frozen"
NO_DECAY_NAMES = ("bias", "scale")


def group_of(path):
  """The top-level param group of a key path."""
  return path[0].key


def trained_groups(optim_config, params):
  """The groups of `params` (a tree keyed by group) with a positive learning rate."""
  rates = optim_config.learning_rates
  missing = sorted(set(params) - set(rates))
  if missing:
    raise ValueError(f"param groups {missing} have no entry in optim.learning_rates")
  return tuple(g for g in params if rates[g] > 0)


def schedule(peak, warmup_fraction, total_steps):
  """Linear warmup from 0 over ceil(fraction * total) steps, then cosine to 0 at total."""
  warmup = math.ceil(warmup_fraction * total_steps)
  return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(total_steps, warmup + 1))


def make(optim_config, params, total_steps):
  """-> (optax transformation over `params`, {trained group: learning-rate schedule})."""
  groups = trained_groups(optim_config, params)
  schedules = {g: schedule(optim_config.learning_rates[g], optim_config.warmup_fraction,
                           total_steps) for g in groups}

  def decays(tree):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: path[-1].key not in NO_DECAY_NAMES, tree)

  def labels(tree):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: group_of(path) if group_of(path) in groups else FROZEN, tree)

  transforms = {g: optax.adamw(schedules[g], b1=optim_config.b1, b2=optim_config.b2,
                               eps=optim_config.eps, weight_decay=optim_config.weight_decay,
                               mask=decays) for g in groups}
  transforms[FROZEN] = optax.set_to_zero()
  tx = optax.multi_transform(transforms, labels)
  if optim_config.clip_norm > 0:
    tx = optax.chain(optax.clip_by_global_norm(optim_config.clip_norm), tx)
  return tx, schedules
