"""QueCC against a PyTorch reference written from its definition, through the converter."""
import math

import flax.linen as nn
import jax
import numpy as np
import pytest
import torch

from vlm_jax import compressors
from vlm_jax.convert.quecc import quecc_params_from_torch

D, HEADS, LAYERS, D_TEXT, G, BATCH = 32, 8, 2, 24, 24, 2
PREFIX = "mm_projector.0."


def _stack(d_in, d):
  return torch.nn.Sequential(torch.nn.Linear(d_in, d), torch.nn.GELU(), torch.nn.Linear(d, d),
                             torch.nn.LayerNorm(d, eps=1e-6))


class TorchQueCC(torch.nn.Module):
  """The paper's module layout (state-dict names included); regions as a batch of attentions."""

  def __init__(self, k):
    super().__init__()
    self.text_projection = torch.nn.Sequential(torch.nn.Linear(D_TEXT, D),
                                               torch.nn.LayerNorm(D, eps=1e-6))
    self.q_proj = _stack(D, D)
    self.k_proj = _stack(LAYERS * D, D)
    self.v_proj = _stack(LAYERS * D, D)
    self.q_downsample = torch.nn.Conv2d(D, D, k, stride=k, groups=D)
    self.clip_attn = torch.nn.MultiheadAttention(D, HEADS, batch_first=True)
    self.k = k

  def forward(self, x, multi, text):
    """x (B, g*g, d), multi (B, g*g, L*d), text (B, d_t) -> (B, h*w, d)."""
    b, k = x.shape[0], self.k
    x = x + self.text_projection(text)[:, None, :]
    q = self.q_proj(x).transpose(1, 2).reshape(b, D, G, G)
    q = self.q_downsample(q)
    h, w = q.shape[2:]
    q = q.permute(0, 2, 3, 1).reshape(b * h * w, 1, D)

    def by_region(t):
      t = t.reshape(b, h, k, w, k, D).permute(0, 1, 3, 2, 4, 5)
      return t.reshape(b * h * w, k * k, D)

    out = self.clip_attn(q, by_region(self.k_proj(multi)), by_region(self.v_proj(multi)))[0]
    return out.reshape(b, h * w, D)


def _randomize(module, seed):
  """Random weights everywhere, biases and LayerNorm affine included (torch zeros some)."""
  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in module.named_parameters():
      noise = torch.randn(p.shape, generator=generator)
      if p.ndim > 1:
        p.copy_(noise / math.sqrt(p[0].numel()))
      elif name.endswith("weight"):  # LayerNorm scale
        p.copy_(1 + 0.2 * noise)
      else:
        p.copy_(0.2 * noise)


@pytest.fixture(scope="module")
def inputs():
  rng = np.random.default_rng(0)
  return (rng.normal(size=(BATCH, G, G, D)).astype(np.float32),
          rng.normal(size=(BATCH, G, G, LAYERS * D)).astype(np.float32),
          rng.normal(size=(BATCH, D_TEXT)).astype(np.float32))


def _checkpoint(budget):
  reference = TorchQueCC(G // math.isqrt(budget)).eval()
  _randomize(reference, seed=budget)
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
