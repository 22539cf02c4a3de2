"""The training state (params, optimizer state, step, RNG) and its shardings on a mesh."""
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from vlm_jax import models, sharding


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # () int32: optimizer updates applied so far
  params: Any  # float32, keyed by param group
  opt_state: Any
  rng: jax.Array  # a raw PRNG key (uint32), split at every step


def unbox_shapes(boxed_params):
  """Plain ShapeDtypeStructs of boxed abstract params (nn.unbox would apply constraints)."""
  is_box = lambda x: isinstance(x, nn.Partitioned)
  return jax.tree.map(lambda x: x.value if is_box(x) else x, boxed_params, is_leaf=is_box)


def shardings(boxed_params, tx, mesh):
  """TrainState of NamedShardings: params (and the optimizer state mirroring them) by
  the logical rules, everything else replicated.

  boxed_params: `models.abstract_params(model_config)`, shapes with logical axes.
  """
  params = sharding.logical_shardings(boxed_params, mesh)
  replicated = NamedSharding(mesh, PartitionSpec())
  shapes = unbox_shapes(boxed_params)
  by_path = {tuple(path): (x.shape, s) for (path, x), s in
             zip(jax.tree_util.tree_leaves_with_path(shapes), jax.tree.leaves(params))}

  def like_param(path, leaf):
    """The sharding of the param whose path ends this optimizer-state path (mu, nu...)."""
    for start in range(len(path)):
      shape, param_sharding = by_path.get(tuple(path[start:]), (None, None))
      if shape == leaf.shape:
        return param_sharding
    return replicated

  opt_state = jax.tree_util.tree_map_with_path(like_param, jax.eval_shape(tx.init, shapes))
  return TrainState(step=replicated, params=params, opt_state=opt_state, rng=replicated)


def abstract(boxed_params, tx, state_shardings):
  """TrainState of ShapeDtypeStructs carrying `state_shardings`: a restore target."""
  params = unbox_shapes(boxed_params)
  shapes = TrainState(step=jax.ShapeDtypeStruct((), jnp.int32), params=params,
                      opt_state=jax.eval_shape(tx.init, params),
                      rng=jax.eval_shape(lambda: jax.random.PRNGKey(0)))
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      shapes, state_shardings)


def init_params(model_config, rng, param_shardings, compiler_options=None):
  """Freshly initialized float32 params, created in place on the mesh."""
  init = jax.jit(lambda key: nn.unbox(models.init(model_config, key)),
                 out_shardings=param_shardings, compiler_options=compiler_options)
  return init(rng)


def create(params, tx, rng, state_shardings, compiler_options=None):
  """The state at step 0 around `params` (already on the mesh)."""
  opt_state = jax.jit(tx.init, out_shardings=state_shardings.opt_state,
                      compiler_options=compiler_options)(params)
  step = jax.device_put(jnp.zeros((), jnp.int32), state_shardings.step)
  return TrainState(step=step, params=params, opt_state=opt_state,
                    rng=jax.device_put(rng, state_shardings.rng))
