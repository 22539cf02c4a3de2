"""Projectors from vision width to LLM width, found by name."""
import flax.linen as nn
import jax.numpy as jnp

from vlm_jax.models import layers
from vlm_jax.registry import Registry

PROJECTORS = Registry("projector")


@PROJECTORS.register("mlp2x_gelu")
class MLP2xGelu(nn.Module):
  """LLaVA-1.5's projector: Linear(d_v -> d), GELU, Linear(d -> d). (B, V, d_v) -> (B, V, d)."""
  out_features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = layers.dense(self.out_features, ("embed", "mlp"), dtype=self.dtype, name="linear_1")(x)
    x = layers.activation("gelu")(x)
    return layers.dense(self.out_features, ("mlp", "embed"), dtype=self.dtype,
                        name="linear_2")(x)


@PROJECTORS.register("linear")
class Linear(nn.Module):
  """LLaVA-1's linear projector. (B, V, d_v) -> (B, V, d)."""
  out_features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    return layers.dense(self.out_features, ("embed", "mlp"), dtype=self.dtype,
                        name="linear_1")(x)
