"""The VLM: V visual tokens per image in the LLM sequence, and QueCC's query vector."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vlm_jax import configs, models
from vlm_jax.models.llm import DecoderLM


def _config(budget=16, **compressor):
  config = configs.preset(f"vlm:llm=tiny_llm:size=xs,budget={budget}")
  config.compressor.update(compressor)
  return config


@pytest.fixture(scope="module")
def setup():
  config = _config()
  params = nn.unbox(models.init(config, jax.random.PRNGKey(0)))
  rng = np.random.default_rng(0)
  inputs = models.dummy_inputs(config, batch=2, text_length=6)
  inputs["pixels"] = rng.normal(size=inputs["pixels"].shape).astype(np.float32)
  inputs["question_ids"] = rng.integers(1, 1000, (2, 5)).astype(np.int32)
  inputs["question_mask"] = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], np.int32)
  return config, params, inputs


@pytest.mark.parametrize("budget", [1, 4, 16, 64])
def test_sequence_carries_budget_tokens(setup, budget):
  config, _, inputs = setup
  config = _config(budget)
  shapes = jax.eval_shape(lambda: models.build(config).init_with_output(
      jax.random.PRNGKey(0), **inputs)[0])
  assert shapes.shape == (2, 6 - 1 + budget, config.llm.vocab_size)


def test_query_is_llm_over_question_alone(setup):
  config, params, inputs = setup
  model = models.build(config)
  query = model.apply({"params": params}, inputs["question_ids"], inputs["question_mask"],
                      method=model.query_vector)
  llm = DecoderLM(config.llm)
  for b, n in enumerate(inputs["question_mask"].sum(1)):
    ids = jnp.asarray(inputs["question_ids"][b:b + 1, :n])
    hidden = llm.apply({"params": params["llm"]}, ids, jnp.ones_like(ids), method=_final_hidden)
    np.testing.assert_allclose(np.asarray(query[b]), np.asarray(hidden[0, -1]), atol=1e-6)


def _final_hidden(llm, ids, mask):
  return llm.forward_embeds(llm.embed_tokens(ids), mask)


def _visual_tokens(vlm, pixels, question_ids, question_mask):
  return vlm.encode_images(pixels, vlm.query_vector(question_ids, question_mask))


@pytest.mark.parametrize("stop", [True, False])
def test_query_gradient_switch(setup, stop):
  """The visual tokens depend on the LLM only through the query vector."""
  config, params, inputs = setup
  model = models.build(_config(stop_query_grad=stop))

  def tokens_sum(llm_params):
    return model.apply({"params": {**params, "llm": llm_params}}, inputs["pixels"],
                       inputs["question_ids"], inputs["question_mask"],
                       method=_visual_tokens).sum()

  grads = jax.grad(tokens_sum)(params["llm"])
  largest = max(float(np.abs(np.asarray(g)).max()) for g in jax.tree.leaves(grads))
  assert (largest == 0) == stop
