"""One training step: gradients (over microbatches), clipping, AdamW per group.

Gradient accumulation is a `lax.scan` over microbatches inside the one jitted
step, so only one microbatch's activations are alive at a time, and the loss
stays the mean over all the batch's answer tokens: each microbatch adds its
summed loss and token count, and the summed gradients are divided by the total
count once, at the end. Only the trained groups are differentiated; frozen
groups pass through unchanged.
"""
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

from vlm_jax import models, sharding
from vlm_jax.train import loss, multi_budget, optimizer
from vlm_jax.train import state as state_lib
from vlm_jax.train.state import TrainState

BATCH_NDIMS = {"input_ids": 2, "labels": 2, "attention_mask": 2, "pixels": 4,
               "question_ids": 2, "question_mask": 2}


def split_microbatches(batch, n):
  """(B, ...) arrays -> (n, B/n, ...); microbatch j holds rows j, j+n, ...

  Interleaved rows keep every microbatch spread over all the batch shards.
  """
  def split(x):
    x = x.reshape(x.shape[0] // n, n, *x.shape[1:]).swapaxes(0, 1)
    return nn.with_logical_constraint(x, (None, "act_batch") + (None,) * (x.ndim - 2))
  return jax.tree.map(split, batch)


def make_train_step(model, tx, schedules, *, microbatches, image_token_id,
                    param_shardings=None, loss_chunk_positions=None):
  """-> step(state, batch) -> (state, metrics); trains the groups in `schedules`.

  model: a VLM, or a tuple of VLMs of one params tree at several budgets, whose
    answer-token losses the step averages (multi-budget mode `all`).
  batch: the BATCH_NDIMS arrays with a leading (global) batch axis.
  param_shardings: where gradients live (as the params), when on a mesh.
  loss_chunk_positions: loss.vlm_loss's chunk_positions, over a (micro)batch's rows.
  """
  trained = tuple(schedules)

  def constrain(grads):
    if param_shardings is None:
      return grads
    return jax.lax.with_sharding_constraint(grads, {g: param_shardings[g] for g in trained})

  def gradients(trained_params, frozen_params, batch, rng):
    def loss_sum(params):
      loss_fn = loss.mean_budget_loss if isinstance(model, tuple) else loss.vlm_loss
      return loss_fn(model, {**frozen_params, **params}, batch, image_token_id, rng,
                     loss_chunk_positions)
    (total, count), grads = jax.value_and_grad(loss_sum, has_aux=True)(trained_params)
    return constrain(grads), total, count

  def step(state, batch):
    rng, step_rng = jax.random.split(state.rng)
    trained_params = {g: state.params[g] for g in trained}
    frozen_params = {g: p for g, p in state.params.items() if g not in trained}
    if microbatches == 1:
      grads, total, count = gradients(trained_params, frozen_params, batch, step_rng)
    else:
      def accumulate(sums, inputs):
        micro, index = inputs
        out = gradients(trained_params, frozen_params, micro, jax.random.fold_in(step_rng, index))
        return jax.tree.map(jnp.add, sums, out), None
      zeros = (constrain(jax.tree.map(jnp.zeros_like, trained_params)),
               jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
      (grads, total, count), _ = jax.lax.scan(
          accumulate, zeros, (split_microbatches(batch, microbatches), jnp.arange(microbatches)))
    denominator = jnp.maximum(count, 1)
    grads = jax.tree.map(lambda g: g / denominator, grads)
    frozen_grads = jax.tree.map(jnp.zeros_like, frozen_params)  # set_to_zero ignores them
    updates, opt_state = tx.update({**grads, **frozen_grads}, state.opt_state, state.params)
    params = {**frozen_params,
              **optax.apply_updates(trained_params, {g: updates[g] for g in trained})}
    metrics = {"loss": total / denominator, "grad_norm": optax.tree.norm(grads),
               "answer_tokens": count, "text_tokens": jnp.sum(batch["attention_mask"]),
               "question_tokens": jnp.sum(batch["question_mask"]),
               **{f"lr/{g}": schedules[g](state.step) for g in trained}}
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state, rng=rng), metrics

  return step


def jit_train_step(step, state_shardings, mesh, compiler_options=None):
  """`step` jitted on `mesh`: state as `state_shardings` (donated), batch over data+fsdp."""
  batch_shardings = {k: sharding.batch_sharding(mesh, n) for k, n in BATCH_NDIMS.items()}
  return jax.jit(step, in_shardings=(state_shardings, batch_shardings),
                 out_shardings=(state_shardings, NamedSharding(mesh, PartitionSpec())),
                 donate_argnums=0, compiler_options=compiler_options)


class Setup(NamedTuple):
  """What training a model on a mesh needs before any array exists."""
  boxed_params: Any  # models.abstract_params: shapes with logical axes
  tx: optax.GradientTransformation
  schedules: dict  # {trained group: learning-rate schedule}
  shardings: TrainState  # of NamedShardings


def setup(model_config, optim_config, total_steps, mesh):
  """The abstract params, optimizer, schedules and state shardings of training on `mesh`."""
  boxed = models.abstract_params(model_config)
  tx, schedules = optimizer.make(optim_config, state_lib.unbox_shapes(boxed), total_steps)
  return Setup(boxed, tx, schedules, state_lib.shardings(boxed, tx, mesh))


def step_model(model_config, multi_budget_mode="all"):
  """What `make_train_step` trains for `model_config`: its VLM, or in multi-budget mode
  `all` the tuple of its VLMs at every budget. In mode `sample` the caller picks the
  budget: model_config at it (multi_budget.at_budget)."""
  served = multi_budget.budgets(model_config)
  if served and multi_budget_mode == "all":
    return tuple(models.build(multi_budget.at_budget(model_config, b)) for b in served)
  return models.build(model_config)


def jitted_step(model_config, train_setup, mesh, *, microbatches, loss_chunk_size=None,
                compiler_options=None, multi_budget_mode="all"):
  """The jitted `make_train_step` of `train_setup` on `mesh`: step(state, batch).

  loss_chunk_size: positions per device whose logits the loss holds at once (the
  config's); 0 or None: the whole (micro)batch's. multi_budget_mode: see `step_model`.
  """
  chunk_positions = loss_chunk_size and loss_chunk_size * sharding.batch_shards(mesh)
  step = make_train_step(step_model(model_config, multi_budget_mode), train_setup.tx,
                         train_setup.schedules, microbatches=microbatches,
                         image_token_id=model_config.image_token_id,
                         param_shardings=train_setup.shardings.params,
                         loss_chunk_positions=chunk_positions)
  return jit_train_step(step, train_setup.shardings, mesh, compiler_options)
