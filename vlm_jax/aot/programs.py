"""The programs to compile ahead of time, over abstract sharded inputs: train, prefill, decode.

Each builder takes a resolved training config, the input `Sizes` and a mesh (not yet
active: lower the program under `sharding.activate(mesh)`) and returns a `Program`: the
jitted function exactly as training (vlm_jax.train.step) or generation
(vlm_jax.generate.decoding) jits it, its arguments as ShapeDtypeStructs carrying their
shardings (nothing is allocated), and its model FLOPs from vlm_jax.flops. The
architecture is the config's model preset: init_* checkpoints are not read, and
config.compiler_options (options for the host's training run) are not applied.
"""
import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from vlm_jax import compressors, flops, models, sharding
from vlm_jax.generate import decoding
from vlm_jax.models import vision as vision_lib
from vlm_jax.registry import Registry
from vlm_jax.train import state as state_lib
from vlm_jax.train import step as step_lib

PROGRAMS = Registry("compiled step")

# Logical axes of the generation state, resolved by sharding.LOGICAL_RULES like the params.
CACHE_AXES = ("layers", "act_batch", None, "act_kv_heads", "head_dim")
ROW_AXES = ("act_batch", None)


@dataclasses.dataclass(frozen=True)
class Sizes:
  """What the inputs are sized by."""
  batch: int  # global: sequences per step, over the whole slice
  text_length: int  # T: prompt positions, the image placeholder counting as one
  question_length: int  # the question alone, for QueCC's query pass
  max_new_tokens: int  # generation: the KV cache holds T - 1 + V + max_new_tokens slots
  microbatches: int = 1  # training: gradient accumulation steps within the batch


@dataclasses.dataclass(frozen=True)
class Program:
  jitted: Any  # the jax.jit-wrapped step
  args: tuple  # its arguments: ShapeDtypeStructs with shardings
  model_flops: float  # vlm_jax.flops count of one call, summed over the batch (whole slice)
  model_flops_basis: str  # what model_flops counts


def visual_tokens(model_config):
  """V: the compressor's target grid size on the tower's grid."""
  grid = vision_lib.grid_size(model_config.vision)
  return int(np.prod(compressors.grid_shape(model_config.compressor, grid)))


def _shardings_of(tree):
  return jax.tree.map(lambda x: x.sharding, tree)


def _placed(shapes, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                      shapes, shardings)


def model_inputs(model_config, sizes, mesh):
  """{name: ShapeDtypeStruct} of a batch of prompts and questions, rows over data x fsdp."""
  vision = model_config.vision
  b, t, q = sizes.batch, sizes.text_length, sizes.question_length
  shapes = {"input_ids": (b, t), "attention_mask": (b, t),
            "pixels": (b, vision.image_size, vision.image_size, vision.num_channels),
            "question_ids": (b, q), "question_mask": (b, q)}
  return {name: jax.ShapeDtypeStruct(shape, jnp.float32 if name == "pixels" else jnp.int32,
                                     sharding=sharding.batch_sharding(mesh, len(shape)))
          for name, shape in shapes.items()}


def training_batch(model_config, sizes, mesh):
  """The abstract batch of `step.make_train_step`: the model inputs and the labels."""
  batch = model_inputs(model_config, sizes, mesh)
  batch["labels"] = batch["input_ids"]
  missing = set(step_lib.BATCH_NDIMS) ^ set(batch)
  if missing:
    raise RuntimeError(f"the training batch and step.BATCH_NDIMS differ in {sorted(missing)}")
  return batch


@PROGRAMS.register("train")
def train_program(config, sizes, mesh):
  """One optimizer step on `sizes.batch` examples (the training loop's jitted step)."""
  model_config = config.model
  # The schedules' length changes constants of the program, not its shape.
  train_setup = step_lib.setup(model_config, config.optim, config.total_steps or 1, mesh)
  train_llm = config.optim.learning_rates.llm > 0
  per_example = flops.train_flops_per_example(
      model_config, sizes.text_length - 1, train_llm=train_llm,
      question_tokens=sizes.question_length)
  return Program(
      jitted=step_lib.jitted_step(model_config, train_setup, mesh,
                                  microbatches=sizes.microbatches),
      args=(state_lib.abstract(train_setup.boxed_params, train_setup.tx, train_setup.shardings),
            training_batch(model_config, sizes, mesh)),
      model_flops=sizes.batch * per_example,
      model_flops_basis="flops.train_flops_per_example x batch (forward + backward, no remat)")


def _params(model_config, mesh):
  """Abstract params placed by the logical rules, as training keeps them (float32)."""
  boxed = models.abstract_params(model_config)
  return _placed(state_lib.unbox_shapes(boxed), sharding.logical_shardings(boxed, mesh))


def _decode_state_shardings(state_shapes, mesh):
  """DecodeState of NamedShardings: the cache by batch and kv heads, rows by batch."""
  box = nn.Partitioned
  boxed = state_shapes._replace(
      cache={k: box(v, names=CACHE_AXES) for k, v in state_shapes.cache.items()},
      slot_valid=box(state_shapes.slot_valid, names=ROW_AXES),
      positions=box(state_shapes.positions, names=ROW_AXES[:1]),
      tokens=box(state_shapes.tokens, names=ROW_AXES),
      done=box(state_shapes.done, names=ROW_AXES[:1]))
  return sharding.logical_shardings(boxed, mesh)


def _generation(config, sizes, mesh):
  """(model, settings, params, inputs, rng, DecodeState shapes with shardings)."""
  model = models.build(config.model)
  settings = decoding.Settings(max_new_tokens=sizes.max_new_tokens)
  params = _params(config.model, mesh)
  inputs = model_inputs(config.model, sizes, mesh)
  rng = jax.eval_shape(lambda: jax.random.PRNGKey(0))
  rng = jax.ShapeDtypeStruct(rng.shape, rng.dtype, sharding=NamedSharding(mesh, PartitionSpec()))
  prefill = functools.partial(decoding.prefill, model, settings=settings)
  with sharding.activate(mesh):
    state_shapes = jax.eval_shape(prefill, params, inputs, rng)
  state = _placed(state_shapes, _decode_state_shardings(state_shapes, mesh))
  return model, settings, params, inputs, rng, state


@PROGRAMS.register("prefill")
def prefill_program(config, sizes, mesh):
  """The prompt pass of generation: vision, compressor, LLM over T - 1 + V tokens, KV cache."""
  model, settings, params, inputs, rng, state = _generation(config, sizes, mesh)
  jitted = jax.jit(functools.partial(decoding.prefill, model, settings=settings),
                   in_shardings=_shardings_of((params, inputs, rng)),
                   out_shardings=_shardings_of(state))
  per_query = flops.inference_flops(config.model, sizes.text_length - 1,
                                    question_tokens=sizes.question_length)["total"]
  return Program(jitted, (params, inputs, rng), sizes.batch * per_query,
                 "flops.inference_flops total x batch")


def decode_step_flops(llm, cache_length):
  """One new token of LLM config `llm` reading `cache_length` cache slots.

  The dense layers and LM head as vlm_jax.flops counts them for one token; attention:
  QKᵀ and AV over every slot the step reads, 4·layers·heads·head_dim·cache_length.
  """
  one_token = flops.llm_flops(llm, 1, head_tokens=1)
  attention = 4 * llm.num_layers * llm.num_heads * llm.head_dim * cache_length
  return one_token["dense"] + one_token["head"] + attention


@PROGRAMS.register("decode")
def decode_program(config, sizes, mesh):
  """One cached decode step: a token per sequence, the cache updated in place (donated)."""
  model, settings, params, _, _, state = _generation(config, sizes, mesh)
  jitted = jax.jit(functools.partial(decoding.decode_step, model, settings=settings),
                   in_shardings=_shardings_of((params, state)), out_shardings=_shardings_of(state),
                   donate_argnums=1)
  cache_length = state.slot_valid.shape[1]
  return Program(jitted, (params, state),
                 sizes.batch * decode_step_flops(config.model.llm, cache_length),
                 f"dense + head per token + attention over the {cache_length} cache slots, "
                 "x batch")
