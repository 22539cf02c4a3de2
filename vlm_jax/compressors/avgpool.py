"""2D adaptive average pooling of the select-layer grid to h x w."""
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vlm_jax.compressors import COMPRESSORS, regions


@COMPRESSORS.register("avgpool")
class AvgPool(nn.Module):
  config: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32

  def __call__(self, features, multi_features, query=None):
    """features (B, g, g, d) -> (B, h*w, d), region means (PyTorch adaptive_avg_pool2d)."""
    g = regions.grid_size(features, multi_features)
    h, w = regions.grid_shape(self.config, g)
    b, d = features.shape[0], features.shape[-1]
    x = features.astype(self.dtype).reshape(b, g * g, d)
    pool = jnp.asarray(regions.pooling_matrix(g, h, w), self.dtype)
    tokens = jnp.einsum("vs,bsd->bvd", pool, x)
    return nn.with_logical_constraint(tokens, ("act_batch", "act_length", "act_embed"))
