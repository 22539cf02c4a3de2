"""Layers shared by the attending compressors: a projection stack and multi-head attention."""
import flax.linen as nn
import jax
import jax.numpy as jnp

from vlm_jax.models import layers

LN_EPS = 1e-6


class ProjectionStack(nn.Module):
  """Linear(d_in -> d), exact GELU, Linear(d -> d), LayerNorm(1e-6). (..., d_in) -> (..., d)."""
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    x = layers.dense(self.features, ("embed", "mlp"), dtype=self.dtype, name="dense_in")(x)
    x = layers.activation("gelu")(x)
    x = layers.dense(self.features, ("mlp", "embed"), dtype=self.dtype, name="dense_out")(x)
    return layers.layer_norm(LN_EPS, dtype=self.dtype, name="norm")(x)


class MultiHeadAttention(nn.Module):
  """torch.nn.MultiheadAttention semantics: biased q/k/v/out projections, 1/sqrt(head_dim).

  query (B, V, d), key and value (B, S, d), mask (V, S) bool (True: may attend; every
  query needs at least one key) -> (B, V, d).
  """
  num_heads: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, query, key, value, mask=None):
    d = query.shape[-1]
    if d % self.num_heads:
      raise ValueError(f"width {d} is not divisible by num_heads={self.num_heads}")
    head_dim = d // self.num_heads

    def project(x, name):
      return layers.dense_general((self.num_heads, head_dim), -1, ("embed", "heads", "head_dim"),
                                  dtype=self.dtype, name=name)(x)

    q = project(query, "query") * head_dim ** -0.5
    k, v = project(key, "key"), project(value, "value")
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32)
    if mask is not None:
      logits = jnp.where(mask, logits, -jnp.inf)
    weights = jax.nn.softmax(logits, axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
    return layers.dense_general(d, (-2, -1), ("heads", "head_dim", "embed"), dtype=self.dtype,
                                name="out")(out)
