"""The params of a model folder or a training run, restored one leaf at a time.

`open_params(spec)` takes what evaluation takes (vlm_jax.evaluate.harness.load_model): a
model folder (vlm_jax.checkpoints), a training workdir (its latest checkpoint) or
`DIR@STEP`; it yields the model config and a `Leaves` that restores only the params
asked for (orbax partial restore), so an export never holds the whole tree.
"""
import contextlib
import os

import flax
import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp

from vlm_jax import checkpoints, errors, models
from vlm_jax.train import pretrained


class Leaves:
  """Param path (tuple of keys) -> float32 np.ndarray, restored on request.

  Holds the leaves of the latest request only: asking for the next tensor's params
  releases the previous ones first. `transform` serves a param as a function of the
  stored one (a multi-budget kernel resized to one budget), applied as it is restored.
  """

  def __init__(self, restore, shapes, source):
    self._restore = restore  # (item, restore_args) -> the partial tree
    self.shapes = shapes  # {path: shape} of every param, as served
    self._stored = dict(shapes)  # {path: shape} as the checkpoint holds them
    self._transforms = {}
    self._source = source
    self._held = {}

  def transform(self, path, fn, shape):
    """Serves param `path` as fn(the stored leaf), which has `shape`."""
    self._transforms[path] = fn
    self.shapes[path] = shape

  def get(self, paths):
    self._held = {p: v for p, v in self._held.items() if p in paths}
    for path in paths:
      if path not in self._held:
        self._held[path] = self._restore_leaf(path)
    return [self._held[p] for p in paths]

  def _restore_leaf(self, path):
    nest = lambda leaf: flax.traverse_util.unflatten_dict({path: leaf})
    tree = self._restore(nest(0), nest(ocp.RestoreArgs(restore_type=np.ndarray,
                                                       dtype=np.float32)))
    leaf = flax.traverse_util.flatten_dict(tree)[path]
    if leaf.shape != self._stored[path]:
      raise errors.BadValueError(
          f"{self._source}: param {'/'.join(path)} has shape {leaf.shape}, its config says "
          f"{self._stored[path]}")
    return self._transforms[path](leaf) if path in self._transforms else leaf


@contextlib.contextmanager
def open_params(spec):
  """-> (model config, Leaves) of `spec`: a model folder, a training workdir or DIR@STEP."""
  path, step = pretrained.parse_spec(spec)
  if pretrained.is_training_run(path):
    with _run_restore(path, step) as restore:
      yield _opened(pretrained.read_run_config(path).model, restore, spec)
    return
  config = checkpoints.load_config(path)
  params = os.path.join(os.path.abspath(path), "params")
  checkpointer = ocp.PyTreeCheckpointer()
  yield _opened(config, lambda item, args: checkpointer.restore(
      params, args=ocp.args.PyTreeRestore(item, args, partial_restore=True)), spec)


def _opened(config, restore, spec):
  shapes = jax.tree.map(lambda x: x.shape, nn.unbox(models.abstract_params(config)))
  return config, Leaves(restore, flax.traverse_util.flatten_dict(shapes), spec)


@contextlib.contextmanager
def _run_restore(workdir, step):
  """A restore function over the params of the run's checkpoint at `step` (None: latest)."""
  manager = ocp.CheckpointManager(
      pretrained.absolute(workdir) / pretrained.RUN_CHECKPOINTS,
      options=ocp.CheckpointManagerOptions(read_only=True),
      item_handlers={"params": ocp.PyTreeCheckpointHandler()})
  try:
    steps = manager.all_steps()
    if not steps:
      raise FileNotFoundError(f"{workdir} holds no checkpoint")
    step = max(steps) if step is None else step
    if step not in steps:
      raise errors.BadValueError(f"{workdir} has no checkpoint at step {step}; it has "
                                 f"{', '.join(map(str, sorted(steps)))}")
    yield lambda item, args: manager.restore(step, args=ocp.args.Composite(
        params=ocp.args.PyTreeRestore(item, args, partial_restore=True))).params
  finally:
    manager.close()
