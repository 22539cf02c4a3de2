"""`train(config, workdir)`: the training loop, from scratch or from the latest checkpoint.

workdir (local or gs://) holds config.json (the resolved config, model
architecture as trained), checkpoints/<step>/ and tensorboard/ event files.
Every process runs the same loop on its own shard of the data; process 0 logs.
"""
import collections
import functools
import logging
import os
import time

import jax
import numpy as np
from jax.experimental import multihost_utils

from vlm_jax import data, sharding
from vlm_jax.data import config as data_config_lib
from vlm_jax.data import processor as processor_lib
from vlm_jax.train import batches, multi_budget, pretrained
from vlm_jax.train import config as config_lib
from vlm_jax.train import metrics as metrics_lib
from vlm_jax.train import state as state_lib
from vlm_jax.train.checkpointing import Checkpointer
from vlm_jax.train import step as step_lib

log = logging.getLogger(__name__)

TrainResult = collections.namedtuple("TrainResult", "state history")


def train(config, workdir, *, dataset=None, until_step=None, explicit=()):
  """Trains as `config` says in `workdir`, resuming from its latest checkpoint if any.

  dataset: (data_config, shard_index=, shard_count=) -> an iterable of host batches
    whose iterators have get_state(), set_state(state) and `counters` (default:
    vlm_jax.data.make_dataset; with config.total_steps unset it needs `num_records`).
  until_step: stop after this step and checkpoint there (default: the last step);
    the schedule still spans all the steps.
  explicit: data keys given as overrides, which win over the processor of the converted
    checkpoint config.init_from names (vlm_jax.data.processor.merge).
  Returns TrainResult(state, history): the final TrainState, and for every step
  trained in this call a dict of floats (`step`, `loss`, `grad_norm`, `lr/<group>`...;
  at logging steps also the data counters `data/<name>` and rates `perf/...`).
  """
  config = config_lib.resolve(config)
  workdir = pretrained.absolute(workdir)
  model_config = pretrained.model_config(config)
  data_config = _data_config(config, model_config, explicit)
  model_config.processor = _run_processor(data_config, pretrained.checkpoint_processor(config)[0])
  loader = (dataset or data.make_dataset)(
      data_config, shard_index=jax.process_index(), shard_count=jax.process_count())
  if hasattr(loader, "tokenizer"):
    processor_lib.check_vocabulary(loader.tokenizer, model_config.llm.vocab_size, "the model")
  total_steps = config.total_steps or _steps_for_epochs(config, loader, data_config.batch_size)
  stop = total_steps if until_step is None else min(until_step, total_steps)
  mesh = sharding.mesh_of(config.mesh)
  sharding.check_batch_splits(config.batch_size, config.microbatches, mesh)
  train_setup = step_lib.setup(model_config, config.optim, total_steps, mesh)
  boxed, tx, schedules, shardings = train_setup
  options = dict(config.compiler_options) or None
  log.info("%s: %s params, training %s for %d steps of %d examples on mesh %s", workdir,
           f"{sum(x.size for x in jax.tree.leaves(state_lib.unbox_shapes(boxed))):,}",
           ", ".join(schedules), total_steps, config.batch_size, dict(mesh.shape))
  with sharding.activate(mesh):
    checkpointer = Checkpointer(workdir / pretrained.RUN_CHECKPOINTS, **config.checkpoint)
    try:
      iterator = iter(loader)
      if checkpointer.latest_step() is not None:
        pretrained.check_resumable(workdir, model_config)
        state, data_state = checkpointer.restore(state_lib.abstract(boxed, tx, shardings))
        iterator.set_state(data_state)
        log.info("resuming %s at step %d", workdir, checkpointer.latest_step())
      else:
        init_rng, train_rng = jax.random.split(jax.random.PRNGKey(config.seed))
        params = state_lib.init_params(model_config, init_rng, shardings.params, options)
        params = pretrained.load(config, params, shardings.params)
        state = state_lib.create(params, tx, train_rng, shardings, options)
      if metrics_lib.is_logging_process():
        workdir.mkdir(parents=True, exist_ok=True)
        resolved = config.copy_and_resolve_references()
        resolved.model = model_config
        (workdir / pretrained.RUN_CONFIG).write_text(resolved.to_json(indent=2))
      step_for = _step_chooser(config, model_config, train_setup, mesh, options)
      writer = metrics_lib.MetricWriter(
          workdir / "tensorboard", total_steps=total_steps,
          initial_step=int(jax.device_get(state.step)), enabled=metrics_lib.is_logging_process())
      try:
        state, history = _run_steps(
            step_for, state, iterator, mesh, checkpointer, writer, stop=stop,
            log_every=config.log_every, cost=metrics_lib.StepCost(config, model_config, mesh))
      finally:
        writer.close()
    finally:
      checkpointer.close()
  return TrainResult(state, history)


def _step_chooser(config, model_config, train_setup, mesh, compiler_options):
  """step_for(step) -> (the jitted step that trains step `step`, metrics it adds).

  In multi-budget mode `sample`, the step at the budget (seed, step) draws, each budget's
  compiled once, and its `budget` added to the metrics; otherwise the one step.
  """
  jitted = functools.cache(lambda budget: step_lib.jitted_step(
      model_config if budget is None else multi_budget.at_budget(model_config, budget),
      train_setup, mesh, microbatches=config.microbatches,
      loss_chunk_size=config.loss_chunk_size, compiler_options=compiler_options,
      multi_budget_mode=config.multi_budget.mode))
  served = multi_budget.budgets(model_config)
  if not served or config.multi_budget.mode == "all":
    return lambda step: (jitted(None), {})

  def step_for(step):
    budget = multi_budget.sampled_budget(config.seed, step, served)
    return jitted(budget), {"budget": budget}
  return step_for


def _run_steps(step_for, state, iterator, mesh, checkpointer, writer, *, stop, log_every, cost):
  """Steps from state.step to `stop`; checkpoints and logs on the way. -> (state, history)."""
  history, pending = [], []
  interval_start, timed = time.perf_counter(), False
  for step in range(int(jax.device_get(state.step)) + 1, stop + 1):
    try:
      host_batch = next(iterator)
    except StopIteration:
      raise RuntimeError(f"the data ran out before step {step}: lower total_steps or leave "
                         f"data.num_epochs unset (repeat)") from None
    step_fn, chosen = step_for(step)
    state, step_metrics = step_fn(state, batches.global_batch(host_batch, mesh))
    pending.append((step, {**step_metrics, **chosen}))
    if step == stop or checkpointer.should_save(step):
      checkpointer.save(step, state, iterator.get_state())
    if step % log_every and step != stop:
      continue
    logged = [{"step": s, **{k: float(v) for k, v in m.items()}}
              for s, m in jax.device_get(pending)]
    now = time.perf_counter()
    logged[-1].update(_data_counters(iterator))
    if timed:  # the first interval of a call includes compilation
      logged[-1].update(cost.rates(logged, now - interval_start))
    for scalars in logged:
      writer.write(scalars)
    writer.report(logged[-1])
    history.extend(logged)
    pending, interval_start, timed = [], now, True
  return state, history


def _data_config(config, model_config, explicit):
  """config.data over an init_from checkpoint's processor, with this host's batch size;
  checks it matches the model."""
  data_config = config.data.copy_and_resolve_references()
  processor, source = pretrained.checkpoint_processor(config)
  processor_lib.merge(data_config, processor, source, explicit)
  if config.batch_size % jax.process_count():
    raise ValueError(f"batch_size={config.batch_size} does not split over "
                     f"{jax.process_count()} processes")
  data_config.batch_size = config.batch_size // jax.process_count()
  vision = model_config.vision
  for key, value in (("image_preprocess", vision.family), ("image_size", vision.image_size),
                     ("image_token_id", model_config.image_token_id)):
    if data_config[key] is None:
      data_config[key] = value
  checks = {"image_size": vision.image_size, "image_preprocess": vision.family,
            "image_token_id": model_config.image_token_id}
  wrong = {k: (data_config[k], v) for k, v in checks.items() if data_config[k] != v}
  if wrong:
    raise ValueError("data config does not match the model: " + ", ".join(
        f"data.{k}={have!r} but the model needs {want!r}" for k, (have, want) in wrong.items()))
  return data_config_lib.resolve(data_config)


def _run_processor(data_config, checkpoint_processor):
  """What this run feeds its model, as its checkpoints record it (vlm_jax.data.processor)."""
  processor = processor_lib.from_data_config(data_config)
  if os.path.exists(processor.tokenizer):  # a local path: valid from any working directory
    processor.tokenizer = os.path.abspath(processor.tokenizer)
  processor.eos_token_ids = list((checkpoint_processor or {}).get("eos_token_ids") or [])
  return processor


def _steps_for_epochs(config, loader, host_batch_size):
  if not hasattr(loader, "num_records"):
    raise ValueError("set total_steps: the dataset does not tell its size (num_records)")
  records = loader.num_records
  if jax.process_count() > 1:  # shards differ by a record at most: the smallest sets the pace
    records = int(np.min(multihost_utils.process_allgather(np.array(records))))
  steps = int(config.num_epochs * records) // host_batch_size
  if steps < 1:
    raise ValueError(f"{config.num_epochs} epochs of {records} records per host make no "
                     f"batch of {host_batch_size}")
  return steps


def _data_counters(iterator):
  """The data pipeline's skip counters, summed over the processes, as `data/<name>`."""
  counters = dict(sorted(getattr(iterator, "counters", {}).items()))
  values = np.array(list(counters.values()), np.int64)
  if jax.process_count() > 1 and counters:
    values = np.sum(multihost_utils.process_allgather(values), axis=0)
  return {f"data/{name}": float(v) for name, v in zip(counters, values)}
