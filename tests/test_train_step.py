"""The train step: answer-token loss, per-group optimizer and freezing, microbatches, and
every compressor learning."""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import train_fixtures
from vlm_jax import models, train
from vlm_jax.train import loss, optimizer
from vlm_jax.train.state import TrainState
from vlm_jax.train.step import make_train_step

COMPRESSORS = ("identity", "avgpool", "tokenpacker", "resampler", "quecc")
STAGE_1 = dict(vision=0.0, compressor=1e-3, projector=1e-3, llm=0.0)
BATCH = train_fixtures.collate([train_fixtures.example(i) for i in range(4)])  # lengths 16, 12


def log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_token_cross_entropy_counts_only_answer_tokens_one_step_ahead():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
  labels = np.array([[-100, -100, 3, 4, -100], [-100, 6, -100, -100, 0]])
  total, count = loss.token_cross_entropy(jnp.asarray(logits), jnp.asarray(labels))
  logp = log_softmax(logits.astype(np.float64))
  # label at position t is predicted by the logits at t - 1
  want = -(logp[0, 1, 3] + logp[0, 2, 4] + logp[1, 0, 6] + logp[1, 3, 0])
  assert int(count) == 4
  np.testing.assert_allclose(float(total), want, rtol=1e-6)


def optim_config(rates, **overrides):
  config = train.default_config().optim
  config.learning_rates.update(rates)
  config.update(overrides)
  return config


def test_schedule_warms_up_then_decays_to_zero():
  lr = optimizer.schedule(1e-3, 0.03, total_steps=200)  # warmup ceil(6) steps
  np.testing.assert_allclose([float(lr(s)) for s in (0, 3, 6, 103, 200)],
                             [0.0, 5e-4, 1e-3, 5e-4, 0.0], atol=1e-9)


def test_frozen_groups_have_no_state_and_decay_skips_biases_and_scales():
  params = {"llm": {"kernel": jnp.ones((2, 3)), "scale": jnp.ones(3)},
            "projector": {"kernel": jnp.ones((3, 3)), "bias": jnp.ones(3)},
            "vision": {"kernel": jnp.ones((4, 2))}}
  config = optim_config(dict(vision=0.0, llm=0.5, projector=0.25), weight_decay=0.1,
                        warmup_fraction=0.0, clip_norm=0.0)
  tx, schedules = optimizer.make(config, params, total_steps=1000)
  assert sorted(schedules) == ["llm", "projector"]
  state = tx.init(params)
  trained_size = sum(x.size for g in ("llm", "projector") for x in jax.tree.leaves(params[g]))
  float_state = [x for x in jax.tree.leaves(state) if x.dtype == jnp.float32]
  assert sum(x.size for x in float_state) == 2 * trained_size  # Adam's mu and nu only

  zero_grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zero_grads, state, params)
  # With zero gradients only decoupled decay moves a param: -lr * decay * param.
  assert np.allclose(updates["llm"]["kernel"], -0.5 * 0.1)
  assert np.allclose(updates["projector"]["kernel"], -0.25 * 0.1)
  for leaf in (updates["llm"]["scale"], updates["projector"]["bias"], updates["vision"]["kernel"]):
    assert not np.any(leaf)


def test_a_param_group_without_learning_rate_is_an_error():
  config = optim_config({})
  del config.learning_rates["llm"]
  with pytest.raises(ValueError, match=r"\['llm'\] have no entry"):
    optimizer.make(config, {"llm": {"kernel": jnp.ones(2)}}, total_steps=10)


@functools.lru_cache(maxsize=None)
def compiled_step(compressor, rates, microbatches):
  """(jitted step, initial state) of the tiny VLM; rates: tuple of (group, lr)."""
  model_config = train_fixtures.model_config(compressor)
  model = models.build(model_config)
  params = jax.jit(lambda key: nn.unbox(models.init(model_config, key)))(jax.random.PRNGKey(0))
  config = optim_config(dict(rates), warmup_fraction=0.0, clip_norm=0.0)
  tx, schedules = optimizer.make(config, params, total_steps=100)
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                     rng=jax.random.PRNGKey(1))
  step = make_train_step(model, tx, schedules, microbatches=microbatches,
                         image_token_id=model_config.image_token_id)
  return jax.jit(step), state


@functools.lru_cache(maxsize=None)
def stage1_run(compressor, steps=10):
  """(initial state, final state, losses) of `steps` stage-1 steps on BATCH."""
  step, state = compiled_step(compressor, tuple(STAGE_1.items()), 1)
  initial, losses = state, []
  for _ in range(steps):
    state, metrics = step(state, BATCH)
    losses.append(float(metrics["loss"]))
  return initial, state, losses


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_every_stage1_step_lowers_the_loss(compressor):
  _, _, losses = stage1_run(compressor)  # ten small Adam steps on one batch
  assert np.all(np.diff(losses) < 0), losses


def test_stage1_changes_compressor_and_projector_only():
  initial, final, _ = stage1_run("quecc")
  for group in ("vision", "llm"):
    for before, after in zip(jax.tree.leaves(initial.params[group]),
                             jax.tree.leaves(final.params[group])):
      assert np.array_equal(np.asarray(before), np.asarray(after))
  for group in ("compressor", "projector"):
    changed = [not np.array_equal(np.asarray(b), np.asarray(a)) for b, a in
               zip(jax.tree.leaves(initial.params[group]), jax.tree.leaves(final.params[group]))]
    assert all(changed), f"{group}: {changed.count(False)} params unchanged"


def test_two_microbatches_of_two_update_like_one_batch_of_four():
  rates = tuple(STAGE_1.items())
  whole, state = compiled_step("quecc", rates, 1)
  halves, _ = compiled_step("quecc", rates, 2)
  batch = dict(BATCH, labels=BATCH["labels"].copy())
  batch["labels"][0, 13:] = -100  # microbatches of 0 + 3 and 3 + 3 answer tokens
  want_state, want = whole(state, batch)
  got_state, got = halves(state, batch)
  assert float(want["answer_tokens"]) == 9
  for name in ("loss", "grad_norm", "answer_tokens"):
    np.testing.assert_allclose(float(got[name]), float(want[name]), rtol=1e-5)
  # After one step Adam's first moment is (1 - b1)·g: the gradients agree. (Not the
  # params: Adam's first step is lr·g/(|g| + eps), whose sign float noise flips where g ≈ 0.)
  got_mu, want_mu = first_moments(got_state), first_moments(want_state)
  assert len(got_mu) == len(jax.tree.leaves(state.params["compressor"])) + len(
      jax.tree.leaves(state.params["projector"]))
  scale = max(float(np.abs(w).max()) for w in want_mu)
  for g, w in zip(got_mu, want_mu):  # float32 sums in another order: 1e-4 of the scale
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=0, atol=1e-4 * scale)


def first_moments(state):
  return [x for path, x in jax.tree_util.tree_leaves_with_path(state.opt_state)
          if ".mu" in jax.tree_util.keystr(path)]
