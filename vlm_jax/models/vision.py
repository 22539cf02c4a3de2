"""Vision transformers: SigLIP and CLIP towers, returning every layer's hidden states.

SigLIP: patch conv with bias, learned positions, pre-LN blocks (tanh-GELU), final
LayerNorm, no class token. CLIP: patch conv without bias, class token, a LayerNorm
before the encoder ("pre_layrnorm"), quick-GELU blocks, final LayerNorm on the class
token only. Layers are scanned, params stacked on a leading `layers` axis; attention
by the implementation `attention` names (vlm_jax.models.attention).
"""
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vlm_jax.models import attention, layers

FAMILIES = ("siglip", "clip")


def default_config():
  return ml_collections.ConfigDict(dict(
      family="siglip", image_size=32, patch_size=8, num_channels=3, hidden_size=32,
      intermediate_size=64, num_layers=2, num_heads=4, layer_norm_eps=1e-6,
      hidden_act="gelu_pytorch_tanh", attention="auto"))


def grid_size(config):
  """Patches per side g (the grid is g x g)."""
  return config.image_size // config.patch_size


def has_class_token(config):
  return config.family == "clip"


class EncoderLayer(nn.Module):
  config: ml_collections.ConfigDict
  dtype: jnp.dtype

  @nn.compact
  def __call__(self, x, _):
    cfg = self.config
    head_dim = cfg.hidden_size // cfg.num_heads
    h = layers.layer_norm(cfg.layer_norm_eps, dtype=self.dtype, name="layer_norm1")(x)
    proj = lambda n: layers.dense_general(
        (cfg.num_heads, head_dim), -1, ("embed", "heads", "head_dim"), dtype=self.dtype,
        name=n)(h)
    h = attention.self_attention(proj("q_proj"), proj("k_proj"), proj("v_proj"), None,
                                 causal=False, implementation=attention.of_module(self))
    h = layers.dense_general(cfg.hidden_size, (-2, -1), ("heads", "head_dim", "embed"),
                             dtype=self.dtype, name="out_proj")(h)
    x = x + h
    h = layers.layer_norm(cfg.layer_norm_eps, dtype=self.dtype, name="layer_norm2")(x)
    h = layers.dense(cfg.intermediate_size, ("embed", "mlp"), dtype=self.dtype, name="fc1")(h)
    h = layers.activation(cfg.hidden_act)(h)
    h = layers.dense(cfg.hidden_size, ("mlp", "embed"), dtype=self.dtype, name="fc2")(h)
    x = nn.with_logical_constraint(x + h, ("act_batch", "act_length", "act_embed"))
    return x, x


class VisionTransformer(nn.Module):
  """pixels (B, H, W, C) float -> dict with `hidden_states` (layers+1, B, N, D)."""
  config: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, pixels):
    cfg = self.config
    if cfg.family not in FAMILIES:
      raise ValueError(f"unknown vision family {cfg.family!r}; known: {FAMILIES}")
    clip = cfg.family == "clip"
    x = nn.Conv(
        cfg.hidden_size, (cfg.patch_size,) * 2, strides=(cfg.patch_size,) * 2,
        padding="VALID", use_bias=not clip, dtype=self.dtype, param_dtype=jnp.float32,
        name="patch_embedding",
        kernel_init=nn.with_logical_partitioning(
            nn.initializers.lecun_normal(), (None, None, None, "embed")),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("embed",)),
    )(pixels.astype(self.dtype))
    x = x.reshape(x.shape[0], -1, cfg.hidden_size)
    if clip:
      cls = self.param("class_embedding", nn.with_logical_partitioning(
          nn.initializers.normal(0.02), ("embed",)), (cfg.hidden_size,), jnp.float32)
      x = jnp.concatenate([jnp.broadcast_to(cls.astype(self.dtype), x[:, :1].shape), x], 1)
    pos = self.param("position_embedding", nn.with_logical_partitioning(
        nn.initializers.normal(0.02), (None, "embed")), (x.shape[1], cfg.hidden_size),
        jnp.float32)
    x = x + pos.astype(self.dtype)
    if clip:
      x = layers.layer_norm(cfg.layer_norm_eps, dtype=self.dtype, name="pre_layrnorm")(x)
    last, per_layer = nn.scan(
        EncoderLayer, variable_axes={"params": 0}, split_rngs={"params": True},
        length=cfg.num_layers, metadata_params={nn.PARTITION_NAME: "layers"},
    )(cfg, self.dtype, name="layers")(x, None)
    hidden_states = jnp.concatenate([x[None], per_layer], axis=0)
    post_ln = layers.layer_norm(cfg.layer_norm_eps, dtype=self.dtype, name="post_layernorm")
    if clip:
      return dict(hidden_states=hidden_states, last_hidden_state=last,
                  pooled=post_ln(last[:, 0]))
    return dict(hidden_states=hidden_states, last_hidden_state=post_ln(last))
