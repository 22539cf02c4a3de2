"""Learned-query resampler (Perceiver / Qwen-VL style): V learned queries attend to all tokens.

Keys carry a learned position embedding of the g*g grid (values do not), so the queries
can tell where a token is; queries and tokens are layer-normed before attention, the
result is layer-normed and projected. A multi-budget resampler (`config.budgets`) keeps
queries for its largest budget and uses their first V, as the Matryoshka Query
Transformer does.
"""
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vlm_jax.compressors import COMPRESSORS, regions
from vlm_jax.compressors.blocks import LN_EPS, MultiHeadAttention
from vlm_jax.models import layers


@COMPRESSORS.register("resampler")
class Resampler(nn.Module):
  config: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features, multi_features, query=None):
    """features (B, g, g, d) -> (B, h*w, d); multi_features and query unused."""
    g, h, w = regions.target_grid(self.config, features, multi_features)
    b, d = features.shape[0], features.shape[-1]
    init = nn.initializers.normal(0.02)
    budgets = self.config.get("budgets")  # absent from configs written before multi-budget
    stored = max(budgets) if budgets else h * w
    queries = self.param("queries", nn.with_logical_partitioning(init, ("query_tokens", "embed")),
                         (stored, d), jnp.float32)[:h * w]
    positions = self.param("key_positions", nn.with_logical_partitioning(init, (None, "embed")),
                           (g * g, d), jnp.float32)
    x = regions.flatten_grid(features, self.dtype)
    x = layers.layer_norm(LN_EPS, dtype=self.dtype, name="kv_norm")(x)
    q = layers.layer_norm(LN_EPS, dtype=self.dtype, name="query_norm")(queries)
    q = jnp.broadcast_to(q, (b, h * w, d))
    out = MultiHeadAttention(self.config.num_heads, self.dtype, name="attention")(
        q, x + positions.astype(self.dtype), x)
    out = layers.layer_norm(LN_EPS, dtype=self.dtype, name="output_norm")(out)
    out = layers.dense(d, ("mlp", "embed"), dtype=self.dtype, name="output_projection")(out)
    return nn.with_logical_constraint(out, ("act_batch", "act_length", "act_embed"))
