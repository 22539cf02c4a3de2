"""Generation jitted over a (data, fsdp, tensor) mesh: prefill, decode step and decode loop.

The one place the generation programs and their shardings are built. `vlm-jax compile
--step prefill|decode` compiles `prefill` and `step` for a TPU slice (vlm_jax.aot.programs);
the Generator, and so `vlm-jax eval`, runs `prefill` and then `decode`, the while loop
whose body is `step`'s function, with the same shardings. Params are placed by their
logical axes (vlm_jax.sharding), prompts and the decode state by rows over data x fsdp,
the KV cache also by kv heads over tensor. Call the programs under
`sharding.activate(mesh)`, where the model's activation constraints resolve.
"""
import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
from jax.sharding import NamedSharding, PartitionSpec

from vlm_jax import models, sharding
from vlm_jax.generate import decoding
from vlm_jax.train import state as state_lib

# Logical axes of the generation state, resolved by sharding.LOGICAL_RULES like the params.
CACHE_AXES = ("layers", "act_batch", None, "act_kv_heads", "head_dim")
ROW_AXES = ("act_batch", None)


@dataclasses.dataclass(frozen=True)
class ShardedGeneration:
  """The jitted programs of one model and decoding settings on one mesh."""
  params: Any  # the params tree of NamedShardings
  rows: NamedSharding  # any array whose leading axis is the batch: prompts, tokens
  state: decoding.DecodeState  # of NamedShardings
  prefill: Any  # (params, inputs, rng) -> DecodeState with the first new token
  step: Any  # (params, state) -> DecodeState with one more token; the state is donated
  decode: Any  # (params, state) -> the DecodeState once every row is done; state donated


def param_shardings(model_config, mesh):
  """The params tree of NamedShardings on `mesh`, by the params' logical axes."""
  return sharding.logical_shardings(models.abstract_params(model_config), mesh)


def param_shapes(model_config, mesh):
  """The params as float32 ShapeDtypeStructs (as checkpoints hold them) with shardings."""
  boxed = models.abstract_params(model_config)
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      state_lib.unbox_shapes(boxed), sharding.logical_shardings(boxed, mesh))


def build(model_config, settings, mesh):
  """-> ShardedGeneration: the prefill, step and decode of decoding.py, jitted on `mesh`.

  Batches of any size that splits over data x fsdp (sharding.check_batch_splits) and of any
  prompt length run through the same programs (one compilation per shape).
  """
  model = models.build(model_config)
  boxed = models.abstract_params(model_config)
  params = sharding.logical_shardings(boxed, mesh)
  rows = NamedSharding(mesh, PartitionSpec(("data", "fsdp")))
  state = _state_shardings(model, model_config, settings, state_lib.unbox_shapes(boxed), mesh)
  bind = lambda fn: functools.partial(fn, model, settings=settings)
  return ShardedGeneration(
      params=params, rows=rows, state=state,
      prefill=jax.jit(bind(decoding.prefill),
                      in_shardings=(params, rows, NamedSharding(mesh, PartitionSpec())),
                      out_shardings=state),
      step=jax.jit(bind(decoding.decode_step), in_shardings=(params, state),
                   out_shardings=state, donate_argnums=1),
      decode=jax.jit(bind(decoding.decode), in_shardings=(params, state),
                     out_shardings=state, donate_argnums=1))


def _state_shardings(model, model_config, settings, params, mesh):
  """DecodeState of NamedShardings: the cache by rows and kv heads, the per-row fields by
  rows, step and rng replicated.

  Traced with one row per batch shard: the shardings are those of any batch that splits
  over the shards, whatever its prompt length.
  """
  inputs = models.dummy_inputs(model_config, batch=sharding.batch_shards(mesh))
  prefill = functools.partial(decoding.prefill, model, settings=settings)
  rng = jax.eval_shape(lambda: jax.random.PRNGKey(0))
  with sharding.activate(mesh):
    shapes = jax.eval_shape(prefill, params, inputs, rng)
  box = nn.Partitioned
  boxed = shapes._replace(
      cache={k: box(v, names=CACHE_AXES) for k, v in shapes.cache.items()},
      slot_valid=box(shapes.slot_valid, names=ROW_AXES),
      positions=box(shapes.positions, names=ROW_AXES[:1]),
      tokens=box(shapes.tokens, names=ROW_AXES),
      done=box(shapes.done, names=ROW_AXES[:1]))
  return sharding.logical_shardings(boxed, mesh)
