"""Training checkpoints: orbax CheckpointManager items params, opt_state, meta, data.

DIR/<step>/params, opt_state: the float32 trees; meta: step and RNG; data: each
process's data-iterator state as JSON (process_<i>-of-<n>.json), so a resumed
run reads on from the batch after the last one trained on. Writes are async: a
save returns once the arrays are copied off the devices.
"""
import dataclasses
import json
from typing import Any

import jax
import orbax.checkpoint as ocp
from etils import epath

from vlm_jax.train.state import TrainState


class DataStateHandler(ocp.CheckpointHandler):
  """Each process writes and reads its own iterator state (a JSON-serialisable dict)."""

  def save(self, directory, args):
    _state_file(directory).write_text(json.dumps(args.state))

  def restore(self, directory, args=None):
    path = _state_file(directory)
    if not path.exists():
      found = sorted(p.name for p in epath.Path(directory).glob("process_*.json"))
      raise FileNotFoundError(f"no data state {path.name} in {directory} (found {found}): "
                              f"resume with as many processes as the run that saved it")
    return json.loads(path.read_text())


def _state_file(directory):
  return epath.Path(directory) / f"process_{jax.process_index()}-of-{jax.process_count()}.json"


@ocp.args.register_with_handler(DataStateHandler, for_save=True)
@dataclasses.dataclass
class DataStateSave(ocp.args.CheckpointArgs):
  state: Any


@ocp.args.register_with_handler(DataStateHandler, for_restore=True)
@dataclasses.dataclass
class DataStateRestore(ocp.args.CheckpointArgs):
  pass


def _tree_handler():
  """Arrays replicated over several devices are written by the replicas together, except
  on CPU devices, which share one host's memory (and there it costs a compile per shape)."""
  parallel = jax.devices()[0].platform != "cpu"
  registry = ocp.type_handlers.create_type_handler_registry(
      (jax.Array, ocp.type_handlers.ArrayHandler(use_replica_parallel=parallel)))
  return ocp.PyTreeCheckpointHandler(type_handler_registry=registry)


def _restore_args(abstract):
  return ocp.args.PyTreeRestore(abstract, ocp.checkpoint_utils.construct_restore_args(abstract))


class Checkpointer:
  """Saves at multiples of `every` steps (and the last), keeping the latest `keep`."""

  def __init__(self, directory, *, every, keep, async_save=True, read_only=False):
    self.directory = epath.Path(directory)
    self.every = every
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, read_only=read_only,
                                             enable_async_checkpointing=async_save),
        item_handlers={"params": _tree_handler(), "opt_state": _tree_handler(),
                       "meta": _tree_handler(), "data": DataStateHandler()})

  def latest_step(self):
    return self._manager.latest_step()

  def should_save(self, step):
    return step % self.every == 0

  def save(self, step, state, data_state):
    """Saves `state`, the state after `step` steps, and the data-iterator state."""
    self._manager.save(step, force=True, args=ocp.args.Composite(
        params=ocp.args.PyTreeSave(state.params),
        opt_state=ocp.args.PyTreeSave(state.opt_state),
        meta=ocp.args.PyTreeSave({"step": state.step, "rng": state.rng}),
        data=DataStateSave(data_state)))

  def restore(self, abstract_state, step=None):
    """-> (TrainState placed like `abstract_state`, data-iterator state) at `step` (latest)."""
    step = self.latest_step() if step is None else step
    restored = self._manager.restore(step, args=ocp.args.Composite(
        params=_restore_args(abstract_state.params),
        opt_state=_restore_args(abstract_state.opt_state),
        meta=_restore_args({"step": abstract_state.step, "rng": abstract_state.rng}),
        data=DataStateRestore()))
    state = TrainState(step=restored.meta["step"], params=restored.params,
                       opt_state=restored.opt_state, rng=restored.meta["rng"])
    return state, restored.data

  def restore_params(self, abstract_params, step=None):
    """Only the params at `step` (latest), placed like `abstract_params`."""
    step = self.latest_step() if step is None else step
    return self._manager.restore(step, args=ocp.args.Composite(
        params=_restore_args(abstract_params))).params

  def close(self):
    """Waits for pending writes, then releases the manager."""
    self._manager.wait_until_finished()
    self._manager.close()
