"""Visual-token compressors, found by name: (B, g, g, d) grid features -> (B, V, d) tokens.

Every compressor is a linen module `Compressor(config, dtype)` called as
`(features (B, g, g, d), multi_features (B, g, g, L*d), query (B, d_t) or None)`
and returns V = h*w tokens, row-major over the h x w target grid.
"""
import jax.numpy as jnp
import ml_collections

from vlm_jax.models import layers
from vlm_jax.registry import Registry

COMPRESSORS = Registry("compressor")


def default_config(**overrides):
  """name; budget V (a square) or grid (h, w); the encoder layers the VLM extracts."""
  config = ml_collections.ConfigDict(dict(
      name="quecc",
      budget=None,
      grid=None,
      # Multi-budget: every budget the one set of params serves (`budget` is the current one):
      # QueCC resizes one kernel (kernel_resize.py), the resampler keeps a prefix of its queries.
      budgets=(),
      select_layer=-2,  # hidden-state index of `features`
      kv_layers=(12, 16, 22, 23),  # hidden-state indices concatenated into multi_features
      num_heads=8,
      stop_query_grad=True,  # no gradient into the LLM through the query vector
  ))
  unknown = sorted(set(overrides) - set(config.keys()))
  if unknown:
    raise KeyError(f"unknown compressor config fields {unknown}; known: {sorted(config.keys())}")
  config.update(overrides)
  return config


def build(config, dtype=jnp.float32):
  """The compressor module named by config.name; dtype a jnp dtype or its name."""
  dtype = layers.dtype_of(dtype) if isinstance(dtype, str) else dtype
  return COMPRESSORS.get(config.name)(config=config, dtype=dtype)


# Imported last: each registers itself in COMPRESSORS.
from vlm_jax.compressors import avgpool, identity, quecc, resampler, tokenpacker  # noqa: E402,F401
from vlm_jax.compressors.regions import grid_shape  # noqa: E402,F401
