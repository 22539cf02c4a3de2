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
    g, h, w = regions.target_grid(self.config, features, multi_features)
    tokens = regions.region_means(regions.flatten_grid(features, self.dtype), g, h, w)
    return nn.with_logical_constraint(tokens, ("act_batch", "act_length", "act_embed"))
