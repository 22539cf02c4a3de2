"""FLOPs counts against params trees, XLA's own cost analysis and hand-computed values."""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vlm_jax import compressors, configs, flops, models, scaling

PAPER_VLM = "vlm:llm=qwen1_5_7b,vision=clip_vit_l_14_336,compressor=quecc,budget=16"
TINY_VLM = "vlm:llm=tiny_llm:size=s,vision=tiny_vision,compressor=quecc,budget=4"


def _params(config):
  return nn.unbox(models.abstract_params(config))


def _size(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _xla_flops(module, params, *args, **kwargs):
  """XLA's HloCostAnalysis count of module.apply: 2 per multiply-add, 1 per elementwise op."""
  fn = jax.jit(lambda p, a, k: module.apply({"params": p}, *a, **k))
  abstract = lambda x: jax.ShapeDtypeStruct(np.shape(x), np.asarray(x).dtype)
  lowered = fn.lower(params, jax.tree.map(abstract, args), jax.tree.map(abstract, kwargs))
  return lowered.compile().cost_analysis()["flops"]


def _tiny_llm(size, layers=None, **overrides):
  config = configs.preset(f"tiny_llm:size={size}")
  config.llm.update(overrides)
  if layers is not None:
    config.llm.num_layers = layers
  return config


def test_llm_share_falls_by_the_total_token_ratio_at_q50():
  rows = {row["visual_tokens"]: row
          for row in flops.table([PAPER_VLM], text_tokens=50, visual_tokens=(1, 576))}
  assert rows[576]["llm"] / rows[1]["llm"] == pytest.approx((50 + 576) / (50 + 1), rel=0.05)
  # Why it holds: at 626 tokens causal attention is ~1 % of the dense matmuls, and the
  # last-token LM head is a constant ~0.2 % of the V = 1 prefill.
  at_626 = flops.llm_flops(configs.preset(PAPER_VLM).llm, 626)
  assert at_626["attention"] / at_626["dense"] < 0.02
  markdown = flops.format_table(list(rows.values()))
  assert f"{rows[576]['llm'] / 1e9:,.2f}" in markdown.splitlines()[-1]


@pytest.mark.parametrize("size,overrides", [
    ("s", {}), ("l", dict(tie_embeddings=False)), ("m", dict(qkv_bias=False))])
def test_llm_dense_flops_are_two_per_nonembedding_param_per_token(size, overrides):
  config = _tiny_llm(size, **overrides)
  params = _params(config)
  nonembedding = _size({k: v for k, v in params.items() if k not in ("embed", "lm_head")})
  for tokens in (1, 37):
    assert flops.llm_flops(config.llm, tokens)["dense"] == 2 * nonembedding * tokens
  assert flops.llm_params(config) == _size(params)


@pytest.mark.parametrize("family", ["siglip", "clip"])
def test_vision_dense_flops_are_two_per_param_per_token(family):
  config = configs.preset("tiny_vision")
  config.vision.family = family
  params = _params(config)
  g = config.vision.image_size // config.vision.patch_size
  tokens = g * g + (family == "clip")
  per_token = {k: v for k, v in params.items()  # post_layernorm: unused by the VLM
               if k not in ("patch_embedding", "position_embedding", "class_embedding",
                            "post_layernorm")}
  expected = 2 * (_size(params["patch_embedding"]) * g * g + _size(per_token) * tokens)
  assert flops.vision_flops(config.vision)["dense"] == expected


# XLA's cost analysis counts a while loop's body once, whatever its trip count, so the
# scanned towers are compared at one layer; the tests above cover the layer count.
# Widths are large enough that the matmuls dominate XLA's elementwise ops (norms,
# activations, softmax, RoPE, residuals), which these counts leave out.


def test_llm_prefill_matches_xla_cost_analysis():
  config = _tiny_llm("l", layers=1)
  llm, tokens = config.llm, 16
  ids = np.ones((1, tokens), np.int32)
  xla = _xla_flops(models.build(config), _params(config), ids, np.ones_like(ids))
  count = flops.llm_flops(llm, tokens, head_tokens=tokens)  # apply gives logits everywhere
  # The masked implementation executes every (query, key) pair, not the causal half.
  full_square = 4 * llm.num_heads * llm.head_dim * tokens * tokens
  assert xla == pytest.approx(count["dense"] + full_square + count["head"], rel=0.03)
  assert count["attention"] == 2 * llm.num_heads * llm.head_dim * tokens * (tokens + 1)


@pytest.mark.parametrize("family", ["siglip", "clip"])
def test_vision_tower_matches_xla_cost_analysis(family):
  config = configs.preset("tiny_vision")
  config.vision.update(family=family, num_layers=1, hidden_size=128, intermediate_size=512)
  pixels = np.zeros((1, 64, 64, 3), np.float32)
  xla = _xla_flops(models.build(config), _params(config), pixels)
  assert xla == pytest.approx(sum(flops.vision_flops(config.vision).values()), rel=0.03)


def test_quecc_matches_xla_cost_analysis_at_one_token():
  # At V = 1 the single region is the whole grid, so the masked dense attention and
  # the region-local count cover the same pairs. Exact GELU's erf expands into a
  # polynomial of elementwise ops on CPU: a few % at this width.
  config = configs.preset("vlm:llm=tiny_llm:size=m,compressor=quecc,budget=1")
  config.vision.hidden_size = d = 256
  g = config.vision.image_size // config.vision.patch_size
  inputs = (jnp.zeros((1, g, g, d)), jnp.zeros((1, g, g, len(config.compressor.kv_layers) * d)),
            jnp.zeros((1, config.llm.hidden_size)))
  module = compressors.build(config.compressor)
  params = nn.unbox(jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), *inputs)))
  xla = _xla_flops(module, params["params"], *inputs)
  count = flops.inference_flops(config, text_tokens=10)["compressor"]
  assert xla == pytest.approx(count, rel=0.05)


def test_paper_column_is_two_n_times_total_tokens():
  rows = flops.table([TINY_VLM], text_tokens=12, visual_tokens=(1, 4, 16, 64))
  n = models.param_count(configs.preset("tiny_llm:size=s"))
  for row in rows:
    assert row["llm_params"] == n
    assert row["paper"] == 2 * n * (12 + row["visual_tokens"])
    parts = sum(row[k] for k in ("vision", "compressor", "query", "projector", "llm"))
    assert row["total"] == parts


def test_uneven_regions_cover_the_adaptive_pooling_boundaries():
  # 27 -> 4 regions per side: [0, 7), [6, 14), [13, 21), [20, 27), sides 7 + 8 + 8 + 7.
  config = configs.preset("vlm:vision=siglip_so400m_14_384,compressor=quecc,budget=16")
  assert flops.compressor_shape(config).coverage == 30 * 30
  assert flops.compressor_shape(config, visual_tokens=729).coverage == 729


def test_projector_is_two_flops_per_param_per_visual_token():
  config = configs.preset(TINY_VLM)
  projector = _params(config)["projector"]
  assert flops.inference_flops(config, 5)["projector"] == 2 * _size(projector) * 4


def test_query_pass_only_for_quecc():
  quecc = flops.inference_flops(TINY_VLM, 9)
  pooled = flops.inference_flops(TINY_VLM.replace("quecc", "avgpool"), 9)
  llm = configs.preset("tiny_llm:size=s").llm
  question = flops.llm_flops(llm, 9, head_tokens=0)
  assert quecc["query"] == question["dense"] + question["attention"]
  assert pooled["query"] == 0
  assert pooled["compressor"] == 8 * 8 * configs.preset(TINY_VLM).vision.hidden_size  # g² · d
  assert flops.inference_flops(TINY_VLM, 9, question_tokens=3)["query"] < quecc["query"]


def test_training_counts_three_passes_of_trained_parts_and_one_of_the_frozen_tower():
  config = configs.preset(TINY_VLM)
  q, v = 20, 4
  infer = flops.inference_flops(config, q, v)
  all_logits = 2 * config.llm.hidden_size * config.llm.vocab_size * (q + v - 1)
  llm_forward = infer["llm"] + all_logits
  trained = 3 * (infer["compressor"] + infer["projector"])
  assert flops.train_flops_per_example(config, q, v) == pytest.approx(
      infer["vision"] + infer["query"] + trained + 3 * llm_forward)
  assert flops.train_flops_per_example(config, q, v, train_llm=False) == pytest.approx(
      infer["vision"] + infer["query"] + trained + 2 * llm_forward)


def test_cost_fn_matches_the_table_and_drives_the_frontier():
  cost_fn = flops.make_cost_fn("clip_vit_l_14_336", "quecc")
  for n, name in ((0.5, "qwen1_5_0_5b"), (7.0, "qwen1_5_7b")):
    spec = f"vlm:llm={name},vision=clip_vit_l_14_336,compressor=quecc,budget=16"
    for v in (1, 16, 144):  # even splits of the 24 x 24 grid
      assert cost_fn(n, v, 50) == pytest.approx(flops.inference_flops(spec, 50, v)["total"])
  grid = cost_fn(np.array([[0.5], [7.0]]), np.array([1.0, 2.5, 576.0]), 50)
  assert grid.shape == (2, 3)
  assert np.all(np.diff(grid, axis=0) > 0) and np.all(np.diff(grid, axis=1) > 0)
  with pytest.raises(ValueError, match="no LLM preset for N = \\[3.0\\]"):
    cost_fn(3.0, 1, 50)

  fit = scaling.Fit(A=1.0, alpha=0.077, beta=0.015, D=0.0, rmse=0.0, n_points=0)
  budget = cost_fn(7.0, 16, 50)
  best, = scaling.frontier(fit, budget, 50, llm_params_b=[0.5, 7.0], integer_tokens=True,
                           cost_fn=cost_fn)
  assert (best.llm_params_b, best.visual_tokens, best.cost_flops) == (7.0, 16, budget)


def test_bad_input_is_refused():
  with pytest.raises(ValueError, match="not a perfect square"):
    flops.inference_flops(TINY_VLM, 10, visual_tokens=5)
  with pytest.raises(ValueError, match="kind vlm"):
    flops.inference_flops("tiny_llm", 10)
  with pytest.raises(ValueError, match="non-negative"):
    flops.inference_flops(TINY_VLM, -1)


def test_flops_command_prints_one_row_per_budget(capsys):
  from vlm_jax import cli
  assert cli.main(["flops", "--model", TINY_VLM, "--text-tokens", "7",
                   "--visual-tokens", "1,16", "--json"]) == 0
  rows = json.loads(capsys.readouterr().out)
  assert [row["visual_tokens"] for row in rows] == [1, 16]
  assert rows[1]["total"] == pytest.approx(flops.inference_flops(TINY_VLM, 7, 16)["total"])
