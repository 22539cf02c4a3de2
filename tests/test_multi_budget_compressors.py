"""One params tree serves every budget: QueCC's resized kernel, the resampler's query prefix."""
import flax.linen as nn
import jax
import numpy as np
import pytest

from vlm_jax import compressors
from vlm_jax.compressors import kernel_resize

D, LAYERS, D_TEXT, BATCH, G = 16, 2, 12, 2, 8
BUDGETS = (1, 4, 16, 64)


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(BATCH, G, G, D)).astype(np.float32),
          rng.normal(size=(BATCH, G, G, LAYERS * D)).astype(np.float32),
          rng.normal(size=(BATCH, D_TEXT)).astype(np.float32))


def _model(name, budget, budgets=BUDGETS):
  return compressors.build(compressors.default_config(
      name=name, num_heads=4, budget=budget, budgets=budgets))


@pytest.mark.parametrize("name", ["quecc", "resampler", "avgpool", "tokenpacker"])
def test_one_tree_serves_every_budget(name):
  inputs = _inputs()
  params = _model(name, BUDGETS[0]).init(jax.random.key(0), *inputs)
  shapes = jax.tree.map(np.shape, params)
  outputs = {}
  for budget in BUDGETS:
    model = _model(name, budget)
    assert jax.tree.map(np.shape, model.init(jax.random.key(1), *inputs)) == shapes
    outputs[budget] = np.asarray(model.apply(params, *inputs))
    assert outputs[budget].shape == (BATCH, budget, D)
  assert len({o.tobytes() for o in outputs.values()}) == len(BUDGETS)


def test_quecc_kernel_is_resized_from_one_base():
  inputs = _inputs()
  params = nn.unbox(_model("quecc", 16).init(jax.random.key(0), *inputs))["params"]
  base = params["q_downsample"]["kernel"]
  assert base.shape == (G, G, D)  # the V = 1 region: the whole grid
  single = compressors.build(compressors.default_config(name="quecc", num_heads=4, budget=16))
  for budget, side in ((16, 2), (4, 4), (64, 1)):
    resized = kernel_resize.resize_kernel(base, (side, side))
    # A coarse region's kernel sums the base kernel over the blocks it covers.
    blocks = np.asarray(base).reshape(side, G // side, side, G // side, D).sum(axis=(1, 3))
    np.testing.assert_allclose(resized, blocks, rtol=1e-5, atol=1e-6)
    if budget == 16:
      own = {**params, "q_downsample": {**params["q_downsample"], "kernel": resized}}
      np.testing.assert_allclose(single.apply({"params": own}, *inputs),
                                 _model("quecc", 16).apply({"params": params}, *inputs),
                                 rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("g,side", [(8, 2), (24, 6), (27, 7)])
def test_single_budget_kernel_round_trips_through_the_base(g, side):
  kernel = np.random.default_rng(0).normal(size=(side, side, D)).astype(np.float32)
  base = kernel_resize.base_kernel(kernel, (g, g))
  assert base.shape == (g, g, D)
  np.testing.assert_allclose(kernel_resize.resize_kernel(base, (side, side)), kernel,
                             rtol=1e-4, atol=1e-4)


def test_area_resize_is_exact_for_upsampled_patches():
  rng = np.random.default_rng(1)
  base = rng.normal(size=(8, 8, 3)).astype(np.float32)
  patch = rng.normal(size=(3, 3, 3)).astype(np.float32)
  up = kernel_resize.area_resize_matrix(3, 8)
  upsampled = np.einsum("pi,ijd,qj->pqd", up, patch, up)
  np.testing.assert_allclose((patch * kernel_resize.resize_kernel(base, (3, 3))).sum((0, 1)),
                             (upsampled * base).sum((0, 1)), rtol=1e-4, atol=1e-4)
