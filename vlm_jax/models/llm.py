"""Decoder LLM covering Qwen2 / Qwen1.5 and Llama 2/3.

RMSNorm, RoPE (rope_theta, rope scaling), grouped-query attention, SwiGLU,
optional q/k/v bias, tied or untied embeddings. Layers are scanned (params
stacked on a leading `layers` axis) and optionally rematerialized (`remat`);
attention by the implementation `attention` names (vlm_jax.models.attention).
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
from jax.ad_checkpoint import checkpoint_name

from vlm_jax.configs import one_of
from vlm_jax.models import attention, layers
from vlm_jax.models.rope import apply_rope, inverse_frequencies

QKV_NAMES = ("query", "key", "value")  # the attention inputs, after RoPE, for `save_qkv`
# What a layer keeps for the backward pass; the rest is recomputed.
REMAT_POLICIES = {
    "none": None,  # everything
    "full": jax.checkpoint_policies.nothing_saveable,  # only the layer's input
    # the matmuls with weights (projections, MLP); attention's batched einsums recomputed
    "dots_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "save_qkv": jax.checkpoint_policies.save_only_these_names(*QKV_NAMES),
}


def default_config():
  """scan_unroll: layers per iteration of the layer scan (num_layers: no loop). The same
  params and numbers; unrolling trades compile time for XLA scheduling across layers."""
  return ml_collections.ConfigDict(dict(
      family="qwen2", vocab_size=1024, hidden_size=64, intermediate_size=128,
      num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16, rope_theta=1e6,
      rope_scaling=None, rms_norm_eps=1e-6, qkv_bias=True, tie_embeddings=True,
      max_position_embeddings=4096, remat="none", attention="auto", scan_unroll=1))


def positions_from_mask(attention_mask):
  """(B, T) 0/1 mask -> (B, T) positions counting only real tokens (padding-aware)."""
  return jnp.maximum(jnp.cumsum(attention_mask, axis=-1) - 1, 0).astype(jnp.int32)


class Attention(nn.Module):
  """Grouped-query self-attention with RoPE and an optional KV cache."""
  config: ml_collections.ConfigDict
  dtype: jnp.dtype

  @nn.compact
  def __call__(self, x, positions, mask, kv_cache=None, cache_index=None):
    """x (B, T, D), positions (B, T) -> (B, T, D), new cache.

    mask (B, T) 0/1 padding: causal attention among these T tokens, by the config's
    implementation (a cache must hold nothing before them: prefill); mask (B, T, S) bool:
    the cache slots each token sees, by xla (the decode step).
    With a cache, keys/values are written at `cache_index` into `kv_cache` = {"k", "v"}
    of shape (B, S, kv_heads, head_dim).
    """
    cfg = self.config
    proj = lambda n, heads, axes: layers.dense_general(
        (heads, cfg.head_dim), -1, ("embed", axes, "head_dim"), use_bias=cfg.qkv_bias,
        dtype=self.dtype, name=n)(x)
    q = proj("q_proj", cfg.num_heads, "heads")
    k = proj("k_proj", cfg.num_kv_heads, "kv_heads")
    v = proj("v_proj", cfg.num_kv_heads, "kv_heads")
    inv_freq = inverse_frequencies(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling)
    q, k = apply_rope(q, positions, inv_freq), apply_rope(k, positions, inv_freq)
    q, k, v = (checkpoint_name(y, name) for y, name in zip((q, k, v), QKV_NAMES))
    q = nn.with_logical_constraint(q, ("act_batch", "act_length", "act_heads", None))
    if kv_cache is not None:
      write = lambda cache, new: jax.lax.dynamic_update_slice_in_dim(
          cache, new.astype(cache.dtype), cache_index, axis=1)
      kv_cache = {"k": write(kv_cache["k"], k), "v": write(kv_cache["v"], v)}
    if mask.ndim == 2:
      out = attention.self_attention(q, k, v, mask, causal=True,
                                     implementation=attention.of_module(self))
    else:
      out = jax.nn.dot_product_attention(q, kv_cache["k"].astype(q.dtype),
                                         kv_cache["v"].astype(q.dtype), mask=mask[:, None])
    out = layers.dense_general(cfg.hidden_size, (-2, -1), ("heads", "head_dim", "embed"),
                               use_bias=False, dtype=self.dtype, name="o_proj")(out)
    return out, kv_cache


class MLP(nn.Module):
  """SwiGLU: down(silu(gate(x)) * up(x))."""
  config: ml_collections.ConfigDict
  dtype: jnp.dtype

  @nn.compact
  def __call__(self, x):
    cfg = self.config
    up = lambda n: layers.dense(cfg.intermediate_size, ("embed", "mlp"), use_bias=False,
                                dtype=self.dtype, name=n)(x)
    h = jax.nn.silu(up("gate_proj")) * up("up_proj")
    h = nn.with_logical_constraint(h, ("act_batch", "act_length", "act_mlp"))
    return layers.dense(cfg.hidden_size, ("mlp", "embed"), use_bias=False, dtype=self.dtype,
                        name="down_proj")(h)


class DecoderLayer(nn.Module):
  config: ml_collections.ConfigDict
  dtype: jnp.dtype

  @nn.compact
  def __call__(self, x, positions, mask, kv_cache=None, cache_index=None):
    cfg = self.config
    x = nn.with_logical_constraint(x, ("act_batch", "act_length", "act_embed"))
    h = layers.RMSNorm(cfg.rms_norm_eps, self.dtype, name="input_layernorm")(x)
    h, kv_cache = Attention(cfg, self.dtype, name="self_attn")(
        h, positions, mask, kv_cache, cache_index)
    x = x + h
    h = layers.RMSNorm(cfg.rms_norm_eps, self.dtype, name="post_attention_layernorm")(x)
    return x + MLP(cfg, self.dtype, name="mlp")(h), kv_cache


class DecoderLM(nn.Module):
  """The LLM. `__call__(input_ids, attention_mask)` -> logits (B, T, vocab)."""
  config: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    cfg = self.config
    self.embed = nn.Embed(
        cfg.vocab_size, cfg.hidden_size, dtype=self.dtype, param_dtype=jnp.float32,
        embedding_init=nn.with_logical_partitioning(
            nn.initializers.normal(0.02), ("vocab", "embed")))
    block = DecoderLayer
    policy = REMAT_POLICIES[one_of("remat policy", cfg.remat, REMAT_POLICIES)]
    if policy is not None:
      block = nn.remat(block, policy=policy, prevent_cse=False)
    self.layers = nn.scan(
        block, variable_axes={"params": 0}, split_rngs={"params": True},
        in_axes=(nn.broadcast, nn.broadcast, 0, nn.broadcast), length=cfg.num_layers,
        unroll=cfg.scan_unroll,
        metadata_params={nn.PARTITION_NAME: "layers"})(cfg, self.dtype)
    self.norm = layers.RMSNorm(cfg.rms_norm_eps, self.dtype)
    if not cfg.tie_embeddings:
      self.lm_head = layers.dense(cfg.vocab_size, ("embed", "vocab"), use_bias=False,
                                  dtype=self.dtype)

  def embed_tokens(self, input_ids):
    """(B, T) int -> (B, T, D)."""
    return self.embed(input_ids)

  def hidden_states(self, embeds, mask, positions, kv_cache=None, cache_index=None):
    """embeds (B, T, D), mask, positions (B, T) -> final-normed (B, T, D).

    mask: (B, T) 0/1 padding for causal attention among the T tokens (no cache, or one
    filled from slot 0: prefill), or (B, T, S) bool, the cache slots each token sees.
    kv_cache: {"k", "v"} of shape (layers, B, S, kv_heads, head_dim) or None.
    Returns (hidden, new kv_cache).
    """
    x, kv_cache = self.layers(embeds.astype(self.dtype), positions, mask, kv_cache,
                              cache_index)
    return self.norm(x), kv_cache

  def logits(self, hidden):
    """(B, T, D) -> (B, T, vocab) float32."""
    if self.config.tie_embeddings:
      out = self.embed.attend(hidden)
    else:
      out = self.lm_head(hidden)
    out = nn.with_logical_constraint(out, ("act_batch", "act_length", "act_vocab"))
    return out.astype(jnp.float32)

  def forward_embeds(self, embeds, attention_mask, positions=None):
    """Causal forward without cache: embeds (B, T, D), attention_mask (B, T) -> (B, T, D)."""
    if positions is None:
      positions = positions_from_mask(attention_mask)
    hidden, _ = self.hidden_states(embeds, attention_mask, positions)
    return hidden

  def __call__(self, input_ids, attention_mask=None, positions=None):
    """(B, T) ids, (B, T) 0/1 mask -> (B, T, vocab) logits."""
    if attention_mask is None:
      attention_mask = jnp.ones_like(input_ids)
    return self.logits(self.forward_embeds(self.embed_tokens(input_ids), attention_mask,
                                           positions))
