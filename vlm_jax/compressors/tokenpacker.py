"""TokenPacker-style region cross-attention, without the question.

Each region's query is the average of its select-layer features, projected; it attends
(multi-head, masked to its own region) to projections of the multi-layer features of
that region, and the attended value is added to the pooled feature.
"""
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vlm_jax.compressors import COMPRESSORS, regions
from vlm_jax.compressors.blocks import MultiHeadAttention, ProjectionStack


@COMPRESSORS.register("tokenpacker")
class TokenPacker(nn.Module):
  config: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features, multi_features, query=None):
    """features (B, g, g, d), multi_features (B, g, g, L*d) -> (B, h*w, d); query unused."""
    g, h, w = regions.target_grid(self.config, features, multi_features)
    d = features.shape[-1]
    pooled = regions.region_means(regions.flatten_grid(features, self.dtype), g, h, w)
    m = regions.flatten_grid(multi_features, self.dtype)
    q = ProjectionStack(d, self.dtype, name="q_proj")(pooled)
    k = ProjectionStack(d, self.dtype, name="k_proj")(m)
    v = ProjectionStack(d, self.dtype, name="v_proj")(m)
    attended = MultiHeadAttention(self.config.num_heads, self.dtype, name="region_attention")(
        q, k, v, mask=regions.region_mask(g, h, w))
    return nn.with_logical_constraint(pooled + attended, ("act_batch", "act_length", "act_embed"))
