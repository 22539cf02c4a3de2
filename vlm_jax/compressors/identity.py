"""No compression: all g*g tokens."""
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vlm_jax.compressors import COMPRESSORS, regions


@COMPRESSORS.register("identity")
class Identity(nn.Module):
  config: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32

  def __call__(self, features, multi_features, query=None):
    """features (B, g, g, d) -> (B, g*g, d); budget, if set, must be g*g."""
    regions.target_grid(self.config, features, multi_features)  # checks the budget
    return regions.flatten_grid(features, self.dtype)
