"""The programs to compile ahead of time, over abstract sharded inputs: train, prefill, decode.

Each builder takes a resolved training config, the input `Sizes` and a mesh (not yet
active: lower the program under `sharding.activate(mesh)`) and returns a `Program`: the
jitted function exactly as training (vlm_jax.train.step) or generation
(vlm_jax.generate.sharded, as `vlm-jax eval` runs it) jits it, its arguments as
ShapeDtypeStructs carrying their shardings (nothing is allocated), and its model FLOPs
from vlm_jax.flops. The architecture is the config's model preset: init_* checkpoints
are not read, and config.compiler_options (options for the host's training run) are not
applied.
"""
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from vlm_jax import compressors, flops, sharding
from vlm_jax.generate import decoding, sharded
from vlm_jax.models import vision as vision_lib
from vlm_jax.registry import Registry
from vlm_jax.train import multi_budget
from vlm_jax.train import state as state_lib
from vlm_jax.train import step as step_lib

PROGRAMS = Registry("compiled step")


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
  """One optimizer step on `sizes.batch` examples (the training loop's jitted step).

  A multi-budget model in mode `sample` compiles its costliest step, at the largest budget.
  """
  model_config, mode = config.model, config.multi_budget.mode
  served = multi_budget.budgets(model_config)
  if served and mode == "sample":
    model_config = multi_budget.at_budget(model_config, served[-1])
  # The schedules' length changes constants of the program, not its shape.
  train_setup = step_lib.setup(model_config, config.optim, config.total_steps or 1, mesh)
  train_llm = config.optim.learning_rates.llm > 0
  tokens = dict(text_tokens=sizes.text_length - 1, train_llm=train_llm,
                question_tokens=sizes.question_length)
  per_example = (flops.train_flops_per_example(model_config, **tokens) if mode == "sample"
                 else flops.multi_budget_train_flops_per_example(model_config, mode=mode,
                                                                  **tokens))
  return Program(
      jitted=step_lib.jitted_step(model_config, train_setup, mesh,
                                  microbatches=sizes.microbatches,
                                  loss_chunk_size=config.loss_chunk_size,
                                  multi_budget_mode=mode),
      args=(state_lib.abstract(train_setup.boxed_params, train_setup.tx, train_setup.shardings),
            training_batch(model_config, sizes, mesh)),
      model_flops=sizes.batch * per_example,
      model_flops_basis="flops.multi_budget_train_flops_per_example x batch "
                        "(forward + backward, no remat)")


def _generation(config, sizes, mesh):
  """(ShardedGeneration, and its arguments: params, inputs, rng, DecodeState, abstract with
  their shardings)."""
  settings = decoding.Settings(max_new_tokens=sizes.max_new_tokens)
  generation = sharded.build(config.model, settings, mesh)
  params = sharded.param_shapes(config.model, mesh)
  inputs = model_inputs(config.model, sizes, mesh)
  rng = jax.eval_shape(lambda: jax.random.PRNGKey(0))
  rng = jax.ShapeDtypeStruct(rng.shape, rng.dtype, sharding=NamedSharding(mesh, PartitionSpec()))
  with sharding.activate(mesh):
    state = jax.eval_shape(generation.prefill, params, inputs, rng)
  return generation, params, inputs, rng, _placed(state, generation.state)


@PROGRAMS.register("prefill")
def prefill_program(config, sizes, mesh):
  """The prompt pass of generation: vision, compressor, LLM over T - 1 + V tokens, KV cache."""
  generation, params, inputs, rng, _ = _generation(config, sizes, mesh)
  per_query = flops.inference_flops(config.model, sizes.text_length - 1,
                                    question_tokens=sizes.question_length)["total"]
  return Program(generation.prefill, (params, inputs, rng), sizes.batch * per_query,
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
  generation, params, _, _, state = _generation(config, sizes, mesh)
  cache_length = state.slot_valid.shape[1]
  return Program(generation.step, (params, state),
                 sizes.batch * decode_step_flops(config.model.llm, cache_length),
                 f"dense + head per token + attention over the {cache_length} cache slots, "
                 "x batch")
