"""Compressors: output shapes, region locality, query dependence, pooling against torch."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from vlm_jax import compressors
from vlm_jax.compressors.quecc import RegionDepthwiseConv

D, LAYERS, D_TEXT, BATCH = 16, 2, 12, 2
ATTENDING = ("avgpool", "tokenpacker", "resampler", "quecc")


def _inputs(g, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(BATCH, g, g, D)).astype(np.float32),
          rng.normal(size=(BATCH, g, g, LAYERS * D)).astype(np.float32),
          rng.normal(size=(BATCH, D_TEXT)).astype(np.float32))


def _bounds(g, n):
  """Adaptive-pooling regions along one side, straight from the floor/ceil definition."""
  return [(math.floor(i * g / n), math.ceil((i + 1) * g / n)) for i in range(n)]


def _model(name, **grid):
  return compressors.build(compressors.default_config(name=name, num_heads=4, **grid))


@pytest.mark.parametrize("g,budgets", [(24, (1, 4, 16, 36, 64, 144, 576)),
                                       (27, (1, 4, 9, 16, 81, 729))])
@pytest.mark.parametrize("name", ATTENDING)
def test_output_shapes(name, g, budgets):
  inputs = [jax.ShapeDtypeStruct(shape, jnp.float32)
            for shape in [(BATCH, g, g, D), (BATCH, g, g, LAYERS * D), (BATCH, D_TEXT)]]
  for budget in budgets:
    model = _model(name, budget=budget)
    out, _ = jax.eval_shape(model.init_with_output, jax.random.key(0), *inputs)
    assert out.shape == (BATCH, budget, D), (name, g, budget)


@pytest.mark.parametrize("g", [24, 27])
def test_identity_keeps_every_token(g):
  features, multi, _ = _inputs(g)
  out = _model("identity").apply({}, features, multi)
  np.testing.assert_array_equal(out, features.reshape(BATCH, g * g, D))
  assert _model("identity", budget=g * g).apply({}, features, multi).shape == (BATCH, g * g, D)
  with pytest.raises(ValueError, match="identity keeps all"):
    _model("identity", budget=16).apply({}, features, multi)


def test_non_square_grid_and_bad_budgets():
  features, multi, _ = _inputs(9)
  assert _model("avgpool", grid=(2, 3)).apply({}, features, multi).shape == (BATCH, 6, D)
  for grid, message in [(dict(budget=8), "not a perfect square"),
                        (dict(), "exactly one of budget"),
                        (dict(budget=4, grid=(2, 2)), "exactly one of budget"),
                        (dict(budget=100), "does not fit")]:
    with pytest.raises(ValueError, match=message):
      _model("avgpool", **grid).apply({}, features, multi)
  with pytest.raises(ValueError, match="multi_features"):
    _model("avgpool", budget=4).apply({}, features, multi[:, :8, :8])
  with pytest.raises(ValueError, match="query"):
    _model("quecc", budget=4).init(jax.random.key(0), features, multi)


def test_default_config_rejects_unknown_fields():
  with pytest.raises(KeyError, match="budjet"):
    compressors.default_config(budjet=4)


def test_dtype_by_name():
  features, multi, text = _inputs(6)
  model = compressors.build(compressors.default_config(name="quecc", budget=4), "bfloat16")
  out, _ = jax.eval_shape(model.init_with_output, jax.random.key(0), features, multi, text)
  assert out.dtype == jnp.bfloat16


@pytest.mark.parametrize("g,grid", [(27, (4, 4)), (27, (8, 8)), (27, (5, 7)), (27, (1, 1)),
                                    (24, (6, 6))])
def test_avgpool_matches_torch_adaptive_avg_pool2d(g, grid):
  features, multi, _ = _inputs(g)
  out = _model("avgpool", grid=grid).apply({}, features, multi)
  expected = torch.nn.functional.adaptive_avg_pool2d(
      torch.from_numpy(features).permute(0, 3, 1, 2), grid).permute(0, 2, 3, 1)
  np.testing.assert_allclose(out, expected.reshape(BATCH, -1, D).numpy(), atol=1e-6, rtol=0)


def test_region_conv_with_unit_kernel_sums_each_region():
  """Non-divisible grid: a ones kernel sums exactly the tokens of each adaptive region."""
  g, grid = 10, (3, 4)
  x = np.random.default_rng(1).normal(size=(BATCH, g, g, D)).astype(np.float32)
  conv = RegionDepthwiseConv(grid)
  shapes = jax.eval_shape(conv.init, jax.random.key(0), x)["params"]
  params = {"kernel": np.ones(shapes["kernel"].value.shape, np.float32),
            "bias": np.zeros((D,), np.float32)}
  out = conv.apply({"params": params}, x)
  expected = np.stack([np.stack([x[:, r0:r1, c0:c1].sum(axis=(1, 2))
                                 for c0, c1 in _bounds(g, grid[1])], axis=1)
                       for r0, r1 in _bounds(g, grid[0])], axis=1)
  np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


def _applied(name, g, budget):
  """(jitted apply with fixed params, inputs) for one compressor and grid."""
  model = _model(name, budget=budget)
  features, multi, text = _inputs(g)
  variables = jax.jit(model.init)(jax.random.key(0), features, multi, text)
  return jax.jit(lambda *x: model.apply(variables, *x)), (features, multi, text)


@pytest.fixture(scope="module")
def applied():
  cache = {}

  def get(name, g, budget):
    if (name, g, budget) not in cache:
      cache[name, g, budget] = _applied(name, g, budget)
    return cache[name, g, budget]
  return get


def _perturb(inputs, rows, cols):
  features, multi, text = (x.copy() for x in inputs)
  features[:, rows, cols] += 3.0
  multi[:, rows, cols] -= 2.0
  return features, multi, text


def _changed_tokens(apply, inputs, rows, cols):
  before = np.asarray(apply(*inputs))
  after = np.asarray(apply(*_perturb(inputs, rows, cols)))
  return set(np.flatnonzero(np.abs(after - before).max(axis=(0, 2)) > 1e-6).tolist())


@pytest.mark.parametrize("g", [12, 10])  # 3 divides 12 (k = 4); 10 gives overlapping regions
@pytest.mark.parametrize("name", ["quecc", "tokenpacker"])
def test_region_locality(applied, name, g):
  apply, inputs = applied(name, g, 9)
  bounds = _bounds(g, 3)
  # the tokens of region i along a side that no neighbouring region shares
  own = [slice(bounds[i - 1][1] if i else 0, bounds[i + 1][0] if i < 2 else g) for i in range(3)]
  for i, j in [(1, 1), (0, 2)]:
    assert _changed_tokens(apply, inputs, own[i], own[j]) == {3 * i + j}
  if bounds[0][1] > bounds[1][0]:  # a token shared by row regions 0 and 1, in column region 0
    assert _changed_tokens(apply, inputs, bounds[1][0], 0) == {0, 3}


@pytest.mark.parametrize("name", ATTENDING)
def test_query_dependence(applied, name):
  apply, (features, multi, text) = applied(name, 12, 4)
  first = np.asarray(apply(features, multi, text))
  second = np.asarray(apply(features, multi, text[::-1] + 1.0))
  if name == "quecc":
    assert np.abs(first - second).max(axis=(1, 2)).min() > 1e-3
  else:
    np.testing.assert_array_equal(first, second)
