"""The training step jitted over a data=8 mesh is pmap's data parallelism: it equals a
jax.pmap step over the same batch, one row per device, gradients averaged by lax.pmean."""
import jax
import jax.numpy as jnp
import numpy as np
import optax

import train_fixtures
from vlm_jax import models, sharding
from vlm_jax.train import batches, loss
from vlm_jax.train import state as state_lib
from vlm_jax.train import step as step_lib

DEVICES, STEPS = 8, 2


def stage2_config():
  """train_fixtures' run with the LLM (and so the LM head) trained too, 8 rows a step.

  Adam's eps is 1e-5: a gradient that is zero but for float noise (a key bias before a
  softmax) moves its param by about ±lr at the default 1e-8, whichever way the noise goes.
  """
  config = train_fixtures.train_config()
  config.optim.learning_rates.llm = 1e-3
  config.optim.eps = 1e-5
  config.batch_size = DEVICES
  return config


def host_batches():
  """STEPS batches of 8 examples (prompts of 16 and 12 tokens, padded)."""
  return [train_fixtures.collate([train_fixtures.example(i)
                                  for i in range(k * DEVICES, (k + 1) * DEVICES)])
          for k in range(STEPS)]


def pmap_step(model, tx, trained, image_token_id, loss_chunk_size):
  """step(params, opt_state, rows, rng) -> (params, opt_state, loss), pmapped over `data`:
  each device's loss and gradients over its rows, averaged over the devices; AdamW."""
  def step(params, opt_state, rows, rng):
    frozen = {g: p for g, p in params.items() if g not in trained}

    def loss_sum(trained_params):
      return loss.vlm_loss(model, {**frozen, **trained_params}, rows, image_token_id, rng,
                           loss_chunk_size)

    (total, count), grads = jax.value_and_grad(loss_sum, has_aux=True)(
        {g: params[g] for g in trained})
    # Averaged sums over averaged counts: the mean over all the devices' answer tokens.
    grads, total, count = jax.lax.pmean((grads, total, count.astype(jnp.float32)), "data")
    grads = jax.tree.map(lambda g: g / count, grads)
    updates, opt_state = tx.update({**grads, **jax.tree.map(jnp.zeros_like, frozen)},
                                   opt_state, params)
    return optax.apply_updates(params, updates), opt_state, total / count

  return jax.pmap(step, axis_name="data")


def test_mesh_data_parallel_step_equals_pmap_step():
  assert jax.device_count() >= DEVICES, "conftest sets 8 host devices"
  devices = jax.devices()[:DEVICES]
  config = stage2_config()
  mesh = sharding.make_mesh(data=DEVICES, devices=devices)
  train_setup = step_lib.setup(config.model, config.optim, config.total_steps, mesh)
  params = state_lib.init_params(config.model, jax.random.PRNGKey(0),
                                 train_setup.shardings.params)
  initial_params = jax.device_get(params)

  with sharding.activate(mesh):
    state = state_lib.create(params, train_setup.tx, jax.random.PRNGKey(1),
                             train_setup.shardings)
    mesh_step = step_lib.jitted_step(config.model, train_setup, mesh, microbatches=1,
                                     loss_chunk_size=config.loss_chunk_size)
    mesh_losses = []
    for host_batch in host_batches():
      state, metrics = mesh_step(state, batches.global_batch(host_batch, mesh))
      mesh_losses.append(float(metrics["loss"]))

  pmapped = pmap_step(models.build(config.model), train_setup.tx,
                      tuple(train_setup.schedules), config.model.image_token_id,
                      config.loss_chunk_size)
  replicate = lambda tree: jax.tree.map(lambda x: np.stack([x] * DEVICES), tree)
  params = replicate(initial_params)
  opt_state = replicate(train_setup.tx.init(initial_params))
  step, pmap_losses, rng = None, [], jax.random.PRNGKey(1)
  for host_batch in host_batches():
    rng, step_rng = jax.random.split(rng)  # as the mesh step splits state.rng
    rows = jax.tree.map(lambda x: x.reshape(DEVICES, 1, *x.shape[1:]), host_batch)
    args = params, opt_state, rows, replicate(step_rng)
    step = step or pmapped.lower(*args).compile()  # every step's shapes are the same
    params, opt_state, losses = step(*args)
    pmap_losses.append(float(losses[0]))

  np.testing.assert_allclose(pmap_losses, mesh_losses, rtol=1e-6)
  assert mesh_losses[1] < mesh_losses[0]
  got, want = jax.device_get(jax.tree.map(lambda x: x[0], params)), jax.device_get(state.params)
  for (path, g), w in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(g, w, rtol=0, atol=1e-6, err_msg=jax.tree_util.keystr(path))
