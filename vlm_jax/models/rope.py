"""Rotary position embedding (rotate-half layout, as Qwen2 and Llama use)."""
import math

import jax.numpy as jnp
import numpy as np


def inverse_frequencies(head_dim, theta, scaling=None):
  """(head_dim // 2,) float32 inverse frequencies, with optional rope scaling."""
  inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
  kind = (scaling or {}).get("rope_type", "default")
  if kind == "default":
    return inv_freq.astype(np.float32)
  if kind == "linear":
    return (inv_freq / scaling["factor"]).astype(np.float32)
  if kind == "llama3":
    return _llama3(inv_freq, scaling).astype(np.float32)
  raise ValueError(f"unsupported rope_scaling type {kind!r} (default, linear, llama3)")


def _llama3(inv_freq, scaling):
  factor = scaling["factor"]
  low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
  old_context = scaling["original_max_position_embeddings"]
  wavelen = 2 * math.pi / inv_freq
  scaled = np.where(wavelen > old_context / low, inv_freq / factor, inv_freq)
  smooth = (old_context / wavelen - low) / (high - low)
  smoothed = (1 - smooth) * scaled / factor + smooth * scaled
  medium = (wavelen >= old_context / high) & (wavelen <= old_context / low)
  return np.where(medium, smoothed, scaled)


def apply_rope(x, positions, inv_freq):
  """x (B, T, heads, head_dim), positions (B, T) -> x rotated, in x's dtype."""
  angles = positions[..., None].astype(jnp.float32) * inv_freq  # (B, T, head_dim/2)
  angles = jnp.concatenate([angles, angles], axis=-1)[:, :, None, :]
  cos, sin = jnp.cos(angles).astype(x.dtype), jnp.sin(angles).astype(x.dtype)
  half = x.shape[-1] // 2
  rotated = jnp.concatenate([-x[..., half:], x[..., :half]], axis=-1)
  return x * cos + rotated * sin
