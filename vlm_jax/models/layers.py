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


def dense_general(features, axis, axes, *, use_bias=True, dtype=jnp.float32, name=None):
  """nn.DenseGeneral (e.g. embed -> heads x head_dim) with logical axes on its kernel."""
  n_out = len(features) if isinstance(features, tuple) else 1
  return nn.DenseGeneral(
      features, axis=axis, use_bias=use_bias, dtype=dtype, param_dtype=jnp.float32,
      name=name,
      kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, axes[-n_out:]))


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
