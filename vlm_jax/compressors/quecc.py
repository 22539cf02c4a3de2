"""QueCC: query-based convolutional cross-attention (DESIGN.md §3).

x' = x + LN(W_t t + b_t); q = q_proj(x'); a depthwise conv (kernel = stride = k) turns
the g x g query grid into h x w queries; each attends, through 8-head attention with
torch.nn.MultiheadAttention semantics, to K = k_proj(m), V = v_proj(m) of its own
k x k region only.

Grids that h or w does not divide (SigLIP so400m: 27 x 27) use adaptive-pooling regions
(see regions.py), which differ in side by one and may overlap by one token. Attention is
dense over all g*g keys with the (V, g*g) region mask, so one code path serves both
cases. The downsampling conv becomes a learned depthwise weighted pooling per region:
one kernel of side k = the largest region side, anchored at each region's top-left
token, with taps beyond the region's own side masked out (not renormalised). When g is
divisible every region is k x k and this is exactly the strided conv, so the paper's
checkpoints load unchanged (vlm_jax.convert.quecc). A multi-budget QueCC
(`config.budgets`) keeps one kernel at the largest region side of its budgets and
resizes it to the current budget's (kernel_resize.py).
"""
import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from vlm_jax.compressors import COMPRESSORS, kernel_resize, regions
from vlm_jax.compressors.blocks import LN_EPS, MultiHeadAttention, ProjectionStack
from vlm_jax.models import layers


class RegionDepthwiseConv(nn.Module):
  """Depthwise conv with one output per adaptive region. (B, g, g, d) -> (B, h, w, d).

  kernel (kh, kw, d), bias (d,): out[i, j] = sum of kernel[p, q] * x[r_i + p, c_j + q]
  over the taps (p, q) inside region (i, j), plus bias. With `base_side` the stored
  kernel is (base_side, base_side, d), resized to (kh, kw) on the fly.
  """
  grid: tuple
  base_side: int | None = None
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    g, d = x.shape[1], x.shape[-1]
    rows, row_inside = regions.region_taps(g, self.grid[0])
    cols, col_inside = regions.region_taps(g, self.grid[1])
    kh, kw = rows.shape[1], cols.shape[1]
    stored = (self.base_side,) * 2 if self.base_side else (kh, kw)
    kernel = self.param(
        "kernel", nn.with_logical_partitioning(nn.initializers.normal((kh * kw) ** -0.5),
                                               (None, None, "embed")),
        (*stored, d), jnp.float32)
    if stored != (kh, kw):
      kernel = kernel_resize.resize_kernel(kernel, (kh, kw))
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("embed",)),
                      (d,), jnp.float32)
    inside = row_inside[:, :, None, None, None] & col_inside[None, None, :, :, None]
    taps = jnp.where(inside, kernel[None, :, None, :, :], 0).astype(self.dtype)  # (h,kh,w,kw,d)
    patches = x[:, rows][:, :, :, cols]  # (B, h, kh, w, kw, d)
    return jnp.einsum("bipjqd,ipjqd->bijd", patches, taps) + bias.astype(self.dtype)


@COMPRESSORS.register("quecc")
class QueCC(nn.Module):
  config: ml_collections.ConfigDict
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features, multi_features, query=None):
    """features (B, g, g, d), multi_features (B, g, g, L*d), query (B, d_t) -> (B, h*w, d)."""
    g, h, w = regions.target_grid(self.config, features, multi_features)
    b, d = features.shape[0], features.shape[-1]
    if query is None or query.ndim != 2 or query.shape[0] != b:
      raise ValueError(f"QueCC needs a query vector (B={b}, d_t), got "
                       f"{None if query is None else query.shape}")
    text = layers.dense(d, ("mlp", "embed"), dtype=self.dtype, name="text_projection")(query)
    text = layers.layer_norm(LN_EPS, dtype=self.dtype, name="text_norm")(text)
    x = features.astype(self.dtype) + text[:, None, None, :]
    q = ProjectionStack(d, self.dtype, name="q_proj")(x)
    budgets = self.config.get("budgets")  # absent from configs written before multi-budget
    base = regions.largest_region_side(g, budgets) if budgets else None
    q = RegionDepthwiseConv((h, w), base, self.dtype, name="q_downsample")(q).reshape(
        b, h * w, d)
    m = regions.flatten_grid(multi_features, self.dtype)
    k = ProjectionStack(d, self.dtype, name="k_proj")(m)
    v = ProjectionStack(d, self.dtype, name="v_proj")(m)
    k = nn.with_logical_constraint(k, ("act_batch", "act_length", "act_embed"))
    v = nn.with_logical_constraint(v, ("act_batch", "act_length", "act_embed"))
    tokens = MultiHeadAttention(self.config.num_heads, self.dtype, name="region_attention")(
        q, k, v, mask=regions.region_mask(g, h, w))
    return nn.with_logical_constraint(tokens, ("act_batch", "act_length", "act_embed"))
