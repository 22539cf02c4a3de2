"""The chunked loss (LM head and cross-entropy over chunks of positions) equals the loss of
the model's whole logits, with its gradients, on one device and on the 2x2x2 mesh."""
import functools
import re

import flax.linen as nn
import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec

import train_fixtures
from vlm_jax import models, sharding
from vlm_jax.train import loss

# 4 rows of 16 + 4 - 1 = 19 positions; rows 2 and 3 padded from 12; the prompts ignored.
BATCH = train_fixtures.collate([train_fixtures.example(i) for i in range(4)])
RNG = jax.random.PRNGKey(0)


@functools.lru_cache(maxsize=None)
def model_and_params(tied):
  config = train_fixtures.model_config()
  config.llm.tie_embeddings = tied
  params = jax.jit(lambda key: nn.unbox(models.init(config, key)))(jax.random.PRNGKey(0))
  return config, models.abstract_params(config), params


def mean_loss_and_grads(config, params, batch, chunk_positions):
  """((mean loss, summed loss, count), gradients of the mean loss w.r.t. every param)."""
  model = models.build(config)

  def mean_loss(p):
    total, count = loss.vlm_loss(model, p, batch, config.image_token_id, RNG, chunk_positions)
    return total / count, (total, count)

  (mean, (total, count)), grads = jax.value_and_grad(mean_loss, has_aux=True)(params)
  return (mean, total, count), grads


@functools.lru_cache(maxsize=None)
def whole_logits(tied):
  config, _, params = model_and_params(tied)
  whole = functools.partial(mean_loss_and_grads, config, chunk_positions=None)
  return jax.jit(whole)(params, BATCH)


def assert_close(got, want):
  (got_mean, got_total, got_count), got_grads = got
  (want_mean, want_total, want_count), want_grads = want
  assert int(got_count) == int(want_count) == 12  # 4 rows x 3 answer tokens
  np.testing.assert_allclose(float(got_total), float(want_total), rtol=1e-6)
  np.testing.assert_allclose(float(got_mean), float(want_mean), rtol=1e-6)
  assert jax.tree.structure(got_grads) == jax.tree.structure(want_grads)
  for (path, g), w in zip(jax.tree_util.tree_leaves_with_path(got_grads),
                          jax.tree.leaves(want_grads)):
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=1e-6,
                               err_msg=jax.tree_util.keystr(path))


# Over the batch's 4 rows: 1 position of each row per chunk (19 chunks), 2 (not dividing
# the 19), and more positions than the batch has (one chunk).
@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("chunk_positions", [4, 8, 1000])
def test_chunked_loss_and_gradients_equal_the_whole_logits(tied, chunk_positions):
  config, _, params = model_and_params(tied)
  chunked = functools.partial(mean_loss_and_grads, config, chunk_positions=chunk_positions)
  got = jax.jit(chunked)(params, BATCH)
  assert_close(got, whole_logits(tied))
  head = "embed" if tied else "lm_head"
  assert np.any(np.asarray(jax.tree.leaves(got[1]["llm"][head])[0]))


def test_chunked_loss_on_the_mesh_equals_the_whole_logits_on_one_device():
  config, boxed, params = model_and_params(True)
  mesh = sharding.make_mesh(data=2, fsdp=2, tensor=2, devices=jax.devices()[:8])
  shardings = sharding.logical_shardings(boxed, mesh)
  embedding = shardings["llm"]["embed"]["embedding"]
  assert embedding.spec == PartitionSpec("tensor", "fsdp")  # (vocab, embed)
  batch_shardings = {k: sharding.batch_sharding(mesh, v.ndim) for k, v in BATCH.items()}

  def sharded(p, batch):
    sums, grads = mean_loss_and_grads(config, p, batch, chunk_positions=8)
    return sums, jax.lax.with_sharding_constraint(grads, shardings)

  with sharding.activate(mesh):
    step = jax.jit(sharded, in_shardings=(shardings, batch_shardings))
    placed = (sharding.shard_params(params, shardings), jax.device_put(BATCH, batch_shardings))
    compiled = step.lower(*placed).compile()
  got = compiled(*placed)  # 1 row per batch shard: 2 positions of it per chunk
  hlo = compiled.as_text()
  assert_close(got, whole_logits(True))
  # Each device computes the logits of its row and half the vocabulary, 2 positions a time.
  assert re.search(r"f32\[1,2,512\]", hlo)
  assert not re.search(r"f32\[[0-9,]*1024\]", hlo)
