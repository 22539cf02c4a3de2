"""QueCC against a PyTorch reference written from its definition, through the converter."""
import math

import flax.linen as nn
import jax
import numpy as np
import pytest
import torch

from vlm_jax import compressors
from vlm_jax.convert.quecc import quecc_params_from_torch
from torch_quecc import TorchQueCC, randomize

D, HEADS, LAYERS, D_TEXT, G, BATCH = 32, 8, 2, 24, 24, 2
PREFIX = "mm_projector.0."


@pytest.fixture(scope="module")
def inputs():
  rng = np.random.default_rng(0)
  return (rng.normal(size=(BATCH, G, G, D)).astype(np.float32),
          rng.normal(size=(BATCH, G, G, LAYERS * D)).astype(np.float32),
          rng.normal(size=(BATCH, D_TEXT)).astype(np.float32))


def _checkpoint(budget):
  reference = TorchQueCC(D, LAYERS * D, D_TEXT, G, G // math.isqrt(budget), HEADS).eval()
  randomize(reference, seed=budget)
  state = {PREFIX + n: t.numpy() for n, t in reference.state_dict().items()}
  return reference, state


@pytest.mark.parametrize("budget", [1, 4, 16, 36, 64, 144])
def test_matches_torch_reference(inputs, budget):
  features, multi, text = inputs
  reference, state = _checkpoint(budget)
  with torch.no_grad():
    expected = reference(torch.from_numpy(features.reshape(BATCH, G * G, D)),
                         torch.from_numpy(multi.reshape(BATCH, G * G, LAYERS * D)),
                         torch.from_numpy(text)).numpy()

  params = quecc_params_from_torch(state.__getitem__)
  model = compressors.build(compressors.default_config(name="quecc", budget=budget))
  abstract = jax.eval_shape(model.init, jax.random.key(0), features, multi, text)["params"]
  assert jax.tree.map(np.shape, params) == jax.tree.map(np.shape, nn.unbox(abstract))
  actual = jax.jit(model.apply)({"params": params}, features, multi, text)
  assert actual.shape == (BATCH, budget, D)
  np.testing.assert_allclose(np.asarray(actual), expected, atol=1e-5, rtol=0)


def test_converter_names_missing_tensor():
  _, state = _checkpoint(4)
  del state[PREFIX + "v_proj.2.bias"]
  with pytest.raises(KeyError, match="v_proj.2.bias"):
    quecc_params_from_torch(state.__getitem__)


def test_converter_names_mismatched_tensor():
  _, state = _checkpoint(4)
  state[PREFIX + "clip_attn.in_proj_weight"] = np.zeros((3 * D, D + 1), np.float32)
  with pytest.raises(ValueError, match="clip_attn.in_proj_weight"):
    quecc_params_from_torch(state.__getitem__)


def test_converter_rejects_heads_not_dividing_width():
  _, state = _checkpoint(4)
  with pytest.raises(ValueError, match="num_heads=5"):
    quecc_params_from_torch(state.__getitem__, num_heads=5)
