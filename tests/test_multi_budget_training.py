"""Multi-budget training: one params tree trained at every budget, in modes `all` and `sample`."""
import functools

import flax.linen as nn
import jax
import numpy as np
import pytest

import train_fixtures
from train_fixtures import SyntheticDataset, collate, example
from vlm_jax import checkpoints, configs, flops, models, train
from vlm_jax.train import loss, multi_budget, step

BUDGETS = (1, 4, 16)  # on the fixture's 4x4 grid
RNG = jax.random.PRNGKey(0)


def multi_budget_config(mode="all", budgets=BUDGETS):
  config = train_fixtures.train_config()
  config.model.compressor.update(budget=max(budgets), budgets=budgets)
  config.multi_budget.mode = mode
  return config


def batch(first=0, rows=4):
  return collate([example(i) for i in range(first, first + rows)])


def init(model_config, seed=0):
  """Fresh VLM params for `model_config` (its tower's image size)."""
  rows = {k: v for k, v in batch().items() if k in loss.MODEL_INPUTS}
  size = model_config.vision.image_size
  rows["pixels"] = np.zeros((len(rows["pixels"]), size, size, 3), np.float32)
  model = models.build(model_config)
  return nn.unbox(jax.jit(model.init)(jax.random.PRNGKey(seed), **rows))["params"]


def budget_losses(model_config):
  """Jitted (params, rows) -> {budget: mean answer-token loss of `rows`} at every budget of
  the model."""
  budget_models = {b: models.build(multi_budget.at_budget(model_config, b))
                   for b in multi_budget.budgets(model_config)}

  def losses(params, rows):
    sums = {b: loss.vlm_loss(m, params, rows, model_config.image_token_id, RNG)
            for b, m in budget_models.items()}
    return {b: total / count for b, (total, count) in sums.items()}

  return jax.jit(losses)


@pytest.mark.parametrize("compressor", ["quecc", "resampler"])
def test_one_params_tree_gives_every_budget_its_tokens(compressor):
  # The tiny tower's 8x8 grid: V = 64 is every token.
  model_config = configs.preset(f"vlm:llm=tiny_llm:size=xs,compressor={compressor},budget=64")
  model_config.compressor.budgets = (1, 4, 16, 64)
  params = init(model_config)
  pixels = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
  question = np.array([[5, 6, 7, 8]] * 2, np.int32)
  model = models.build(model_config)
  inputs = jax.jit(functools.partial(model.apply, method=model.image_inputs))(
      {"params": params}, pixels, question, np.ones_like(question))
  for budget in (1, 4, 16, 64):
    at_budget = models.build(multi_budget.at_budget(model_config, budget))
    tokens = jax.jit(functools.partial(at_budget.apply, method=at_budget.compress))(
        {"params": params}, *inputs)
    assert tokens.shape == (2, budget, model_config.llm.hidden_size)


@pytest.mark.parametrize("chunk_positions", [None, 8])
def test_all_is_the_mean_of_the_per_budget_losses(chunk_positions):
  model_config = multi_budget_config().model
  params = init(model_config)
  rows = batch()
  budget_models = step.step_model(model_config, "all")
  total, count = jax.jit(lambda p, r: loss.mean_budget_loss(
      budget_models, p, r, model_config.image_token_id, RNG, chunk_positions))(params, rows)
  separate = jax.jit(lambda p, r: [loss.vlm_loss(m, p, r, model_config.image_token_id, RNG,
                                                 chunk_positions) for m in budget_models])(
      params, rows)
  assert all(int(c) == int(count) for _, c in separate)
  want = np.mean([float(t) / float(c) for t, c in separate])
  assert abs(float(total) / float(count) - want) <= 1e-6


def test_all_lowers_the_loss_at_every_budget(tmp_path):
  config = multi_budget_config("all")
  config.optim.learning_rates.update(compressor=3e-3, projector=3e-3)
  config.total_steps = 8
  start = train.train(config, tmp_path / "start", dataset=SyntheticDataset, until_step=0)
  end = train.train(config, tmp_path / "end", dataset=SyntheticDataset)
  rows = batch(0, 16)
  losses = budget_losses(config.model)
  before = losses(start.state.params, rows)
  after = losses(end.state.params, rows)
  assert all(after[b] < before[b] for b in BUDGETS), (before, after)


def test_sample_draws_as_its_seed_says_and_resumes_the_draw(tmp_path):
  config = multi_budget_config("sample")
  whole = train.train(config, tmp_path / "whole", dataset=SyntheticDataset)
  drawn = [h["budget"] for h in whole.history]
  assert drawn == [multi_budget.sampled_budget(config.seed, s, BUDGETS) for s in range(1, 7)]
  assert len(set(drawn)) > 1
  other_seed = [multi_budget.sampled_budget(1, s, BUDGETS) for s in range(1, 33)]
  assert other_seed != [multi_budget.sampled_budget(0, s, BUDGETS) for s in range(1, 33)]

  train.train(config, tmp_path / "split", dataset=SyntheticDataset, until_step=3)
  resumed = train.train(config, tmp_path / "split", dataset=SyntheticDataset)
  assert [h["budget"] for h in resumed.history] == drawn[3:]
  np.testing.assert_allclose([h["loss"] for h in resumed.history],
                             [h["loss"] for h in whole.history[3:]], rtol=0, atol=1e-6)


def test_a_converted_single_budget_quecc_checkpoint_continues_multi_budget(tmp_path):
  single = train_fixtures.model_config()  # QueCC at 4 tokens: a 2x2 kernel
  params = init(single, seed=3)
  checkpoints.save(tmp_path / "converted", single, params)
  config = multi_budget_config("all")
  config.init_from = str(tmp_path / "converted")
  result = train.train(config, tmp_path / "run", dataset=SyntheticDataset, until_step=0)
  widened = result.state.params
  assert widened["compressor"]["q_downsample"]["kernel"].shape[:2] == (4, 4)
  rows = {k: v for k, v in batch().items() if k in loss.MODEL_INPUTS}
  at_4 = models.build(multi_budget.at_budget(config.model, 4))
  np.testing.assert_allclose(jax.jit(at_4.apply)({"params": widened}, **rows),
                             jax.jit(models.build(single).apply)({"params": params}, **rows),
                             rtol=1e-5, atol=1e-5)
  continued = train.train(config, tmp_path / "run", dataset=SyntheticDataset)
  assert [h["step"] for h in continued.history] == list(range(1, 7))
  assert np.all(np.isfinite([h["loss"] for h in continued.history]))


def test_flops_of_a_multi_budget_step():
  model_config = multi_budget_config().model
  per_budget = [flops.train_flops_per_example(model_config, 12, b, question_tokens=4)
                for b in BUDGETS]
  shared = flops.inference_flops(model_config, 12, question_tokens=4)
  shared = shared["vision"] + shared["query"]
  assert flops.multi_budget_train_flops_per_example(
      model_config, 12, "all", question_tokens=4) == pytest.approx(
          sum(per_budget) - 2 * shared)
  assert flops.multi_budget_train_flops_per_example(
      model_config, 12, "sample", question_tokens=4) == pytest.approx(np.mean(per_budget))


def test_the_tiny_config_takes_budgets_and_a_mode():
  config = train.resolve(configs.load("configs/train/tiny.py:budgets=1+4+16+64,"
                                      "budget_mode=sample"))
  assert tuple(config.model.compressor.budgets) == (1, 4, 16, 64)
  assert config.model.compressor.budget == 64 and config.multi_budget.mode == "sample"
  with pytest.raises(ValueError, match="cannot serve several budgets"):
    train.resolve(configs.load("configs/train/tiny.py:budgets=1+64,compressor=identity"))
  with pytest.raises(ValueError, match="multi_budget.mode"):
    bad = multi_budget_config()
    bad.multi_budget.mode = "every"
    train.resolve(bad)
