"""Self-attention implementations, chosen by name in the model config (`attention`).

xla: jax.nn.dot_product_attention's einsums; the (B, heads, T, T) scores are materialized.
cudnn: cuDNN's fused flash attention (GPU; bfloat16 or float16 compute).
splash: the Pallas TPU splash-attention kernel under shard_map: rows over the mesh's batch
  axes (data, fsdp), heads over tensor.
auto: the platform's best: splash on TPU, cudnn on GPU (xla for float32), xla elsewhere.

The platform is that of the mesh being traced for, so under `vlm-jax compile` a CPU host
compiling for a TPU slice resolves `auto` to splash; without a mesh, JAX's default backend's.

Padding: the fused kernels mask by segment ids (1: a real token, 0: padding, left or right):
a token sees the earlier tokens of its own segment. A real token thus sees what the xla
mask (causal, key not padding) lets it see; a padding token sees padding, not nothing, so
no softmax row is empty. Padding tokens' outputs differ between the two and mean nothing.

Splash needs sequence lengths that are multiples of its blocks: the sequence is padded to
a multiple of 128 with padding-segment tokens (sliced off after), and the blocks are the
largest of 512, 256, 128 that divides the padded length.
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu import splash_attention
from jax.sharding import PartitionSpec

from vlm_jax.configs import one_of
from vlm_jax.errors import BadValueError

IMPLEMENTATIONS = ("auto", "xla", "cudnn", "splash")
WORKING = {"cpu": ("xla",), "gpu": ("xla", "cudnn"), "tpu": ("xla", "splash")}
FUSED = {"gpu": "cudnn", "tpu": "splash"}  # what `auto` picks
HALF_PRECISION = (jnp.bfloat16, jnp.float16)  # what cuDNN's flash attention computes in
SPLASH_LANES = 128  # the kernel's smallest block: padded lengths are its multiples
SPLASH_BLOCKS = (512, 256, 128)  # tried largest first


def target_platform():
  """'tpu', 'gpu' or 'cpu': the active mesh's devices', else JAX's default backend."""
  mesh = jax.sharding.get_abstract_mesh()
  if not mesh.empty and mesh.abstract_device is not None:
    return mesh.abstract_device.platform
  return jax.default_backend()


def resolve(name, dtype, platform=None):
  """The implementation config value `name` means for compute `dtype` on `platform`.

  platform: default target_platform(). An implementation that does not run there (or
  cudnn in float32) is an error naming the platform and the choices that work there.
  """
  one_of("attention implementation", name, IMPLEMENTATIONS)
  platform = platform or target_platform()
  working = WORKING.get(platform, ("xla",))
  half = jnp.dtype(dtype) in HALF_PRECISION
  if name == "auto":
    fused = FUSED.get(platform, "xla")
    return "xla" if fused == "cudnn" and not half else fused
  if name not in working:
    raise BadValueError(f"attention {name!r} does not run on {platform}; choices there: "
                        + ", ".join(("auto",) + working))
  if name == "cudnn" and not half:
    raise BadValueError(f"attention 'cudnn' computes in bfloat16 or float16, not "
                        f"{jnp.dtype(dtype).name}; choices: auto, xla, or dtype=bfloat16")
  return name


def of_module(module):
  """The implementation a linen module with `config.attention` and `dtype` runs.

  xla while initializing: the params do not depend on it, and a CPU host initializes the
  models it compiles for TPU slices.
  """
  if module.is_initializing():
    return "xla"
  # Checkpoints converted before the field existed lack it.
  return resolve(module.config.get("attention", "auto"), module.dtype)


def xla_mask(padding, causal):
  """(B, T) 0/1 padding -> (B, 1, T, T) bool: the xla mask, key not padding (and causal)."""
  t = padding.shape[-1]
  keys = padding[:, None, None, :] > 0
  return keys & jnp.tril(jnp.ones((t, t), dtype=bool)) if causal else keys


def segment_ids(padding):
  """(B, T) 0/1 padding -> (B, T) int32: 1 a real token, 0 padding."""
  return (padding > 0).astype(jnp.int32)


def segment_mask(segments, causal):
  """(B, T) segment ids -> (B, T, T) bool: the fused kernels' mask, same segment (and causal)."""
  t = segments.shape[-1]
  same = segments[:, :, None] == segments[:, None, :]
  return same & jnp.tril(jnp.ones((t, t), dtype=bool))[None] if causal else same


def self_attention(q, k, v, padding, *, causal, implementation):
  """Attention of T tokens over themselves, by a resolved implementation name.

  q (B, T, heads, D), k and v (B, T, kv_heads, D), padding (B, T) 0/1 or None
  -> (B, T, heads, D). causal: each token sees itself and the tokens before it.
  """
  return {"xla": _xla, "cudnn": _cudnn, "splash": _splash}[implementation](
      q, k, v, padding, causal)


def _xla(q, k, v, padding, causal):
  mask = None if padding is None else xla_mask(padding, causal)
  return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal and mask is None)


def _cudnn(q, k, v, padding, causal):
  mask = None
  if padding is not None:  # causal is cuDNN's own; padding is a (B, 1, T, T) bias
    mask = segment_mask(segment_ids(padding), causal=False)[:, None]
  return jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal,
                                      implementation="cudnn")


def splash_length(length):
  """(padded length, block size) of the splash kernel for a sequence of `length`."""
  padded = -(-length // SPLASH_LANES) * SPLASH_LANES
  return padded, next(b for b in SPLASH_BLOCKS if padded % b == 0)


def _splash(q, k, v, padding, causal):
  b, t, heads, head_dim = q.shape
  length, block = splash_length(t)
  tail = length - t

  def padded_heads_first(x):
    """(B, T, h, D) -> (B, h, length, D), the tail zeros."""
    return jnp.pad(x, ((0, 0), (0, tail), (0, 0), (0, 0))).swapaxes(1, 2)

  segments = jnp.ones((b, t), jnp.int32) if padding is None else segment_ids(padding)
  segments = jnp.pad(segments, ((0, 0), (0, tail)))  # the tail: padding
  mask_class = splash_attention.CausalMask if causal else splash_attention.FullMask
  blocks = splash_attention.BlockSizes(
      block_q=block, block_kv=block, block_kv_compute=block, block_q_dkv=block,
      block_kv_dkv=block, block_kv_dkv_compute=block, block_q_dq=block, block_kv_dq=block)

  def per_shard(q, k, v, segments):
    """The kernel on this shard's rows and heads: q (b, h, L, D), k/v (b, kv_h, L, D)."""
    mask = splash_attention.MultiHeadMask([mask_class((length, length))] * q.shape[1])
    kernel = splash_attention.make_splash_mha(mask, block_sizes=blocks, head_shards=1,
                                              q_seq_shards=1)
    return jax.vmap(kernel)(q, k, v, splash_attention.SegmentIds(segments, segments))

  # The kernel leaves the 1/sqrt(D) scale to its caller.
  args = (padded_heads_first(q * head_dim ** -0.5), padded_heads_first(k),
          padded_heads_first(v), segments)
  out = _on_mesh(per_shard, b, heads, k.shape[2])(*args)
  return out.swapaxes(1, 2)[:, :t]


def _on_mesh(per_shard, batch, heads, kv_heads):
  """`per_shard` under shard_map over the active mesh (as it is without one).

  Rows go over the mesh axes of `act_batch`, heads over those of `act_heads`, each where
  it divides (else replicated); query and key heads shard together to keep their groups.
  """
  mesh = jax.sharding.get_abstract_mesh()
  if mesh.empty:
    return per_shard
  batch_axes, head_axes = nn.logical_to_mesh_axes(("act_batch", "act_heads"))
  size = lambda axes: math.prod(mesh.shape[a] for a in _axis_names(axes))
  if batch % size(batch_axes):
    batch_axes = None
  if heads % size(head_axes) or kv_heads % size(head_axes):
    head_axes = None
  heads_spec = PartitionSpec(batch_axes, head_axes)
  return jax.shard_map(per_shard, mesh=mesh, out_specs=heads_spec, check_vma=False,
                       in_specs=(heads_spec, heads_spec, heads_spec, PartitionSpec(batch_axes)))


def _axis_names(axes):
  """A PartitionSpec entry (None, a name, or a tuple of names) -> tuple of names."""
  return (axes,) if isinstance(axes, str) else tuple(axes or ())
