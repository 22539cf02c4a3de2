"""Building blocks shared by every model: dense layers and norms with logical axes."""
import flax.linen as nn
import jax
import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def dtype_of(name):
  if name not in DTYPES:
    raise ValueError(f"unknown compute dtype {name!r}; known: {sorted(DTYPES)}")
  return DTYPES[name]


def dense(features, axes, *, use_bias=True, dtype=jnp.float32, name=None,
          kernel_init=nn.initializers.lecun_normal()):
  """nn.Dense with float32 params named by logical axes `axes` = (in, out)."""
  return nn.Dense(
      features, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32, name=name,
      kernel_init=nn.with_logical_partitioning(kernel_init, axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, axes[-1:]))


class DenseGeneral(nn.Module):
  """x contracted over `axis` with a kernel of shape (x.shape[axis]..., features...).

  The kernel is created in its full shape (unlike nn.DenseGeneral's flat one) so its
  logical axes `axes` apply under a mesh.
  """
  features: tuple
  axis: tuple
  axes: tuple
  use_bias: bool = True
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    axis = tuple(a % x.ndim for a in self.axis)
    n_in = len(axis)
    shape = tuple(x.shape[a] for a in axis) + self.features
    init = nn.initializers.lecun_normal(in_axis=tuple(range(n_in)),
                                        out_axis=tuple(range(n_in, len(shape))))
    kernel = self.param("kernel", nn.with_logical_partitioning(init, self.axes), shape,
                        jnp.float32)
    y = jax.lax.dot_general(x.astype(self.dtype), kernel.astype(self.dtype),
                            ((axis, tuple(range(n_in))), ((), ())))
    if self.use_bias:
      bias = self.param("bias", nn.with_logical_partitioning(
          nn.initializers.zeros, self.axes[n_in:]), self.features, jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


def dense_general(features, axis, axes, *, use_bias=True, dtype=jnp.float32, name=None):
  """DenseGeneral (e.g. embed -> heads x head_dim) with logical axes `axes` on its kernel."""
  as_tuple = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,)
  return DenseGeneral(as_tuple(features), as_tuple(axis), tuple(axes), use_bias=use_bias,
                      dtype=dtype, name=name)


def layer_norm(eps, *, dtype=jnp.float32, name=None):
  return nn.LayerNorm(
      epsilon=eps, dtype=dtype, param_dtype=jnp.float32, name=name,
      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("norm",)))


class RMSNorm(nn.Module):
  """x / rms(x) * scale, computed in float32 as Qwen2/Llama do."""
  eps: float
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("norm",)),
                       (x.shape[-1],), jnp.float32)
    x32 = x.astype(jnp.float32)
    x32 = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    return scale.astype(self.dtype) * x32.astype(self.dtype)


ACTIVATIONS = {
    "gelu": lambda x: nn.gelu(x, approximate=False),
    "gelu_pytorch_tanh": lambda x: nn.gelu(x, approximate=True),
    "gelu_tanh": lambda x: nn.gelu(x, approximate=True),
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
    "silu": jax.nn.silu,
}


def activation(name):
  if name not in ACTIVATIONS:
    raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}")
  return ACTIVATIONS[name]
