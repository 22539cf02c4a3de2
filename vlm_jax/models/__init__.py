"""Models found by the config's `kind`: `llm`, `vision` or `vlm`.

`build(config)` returns a Flax module; `apply({'params': params}, **inputs)` gives
LLM logits from input_ids/attention_mask, vision hidden states from NHWC pixels,
or VLM logits.
"""
import jax
import jax.numpy as jnp
import numpy as np

from vlm_jax.models.layers import dtype_of
from vlm_jax.models.llm import DecoderLM
from vlm_jax.models.vision import VisionTransformer
from vlm_jax.models.vlm import VLM
from vlm_jax.registry import Registry

MODELS = Registry("model kind")
MODELS.register("llm")(lambda config, dtype: DecoderLM(config.llm, dtype))
MODELS.register("vision")(lambda config, dtype: VisionTransformer(config.vision, dtype))
MODELS.register("vlm")(lambda config, dtype: VLM(config, dtype))


def build(config):
  """The Flax module described by `config` (a model config, see configs/models/)."""
  return MODELS.get(config.kind)(config, dtype_of(config.get("dtype", "float32")))


def dummy_inputs(config, batch=1, text_length=8):
  """Smallest inputs that trace every param of the model."""
  inputs = {}
  if config.kind in ("llm", "vlm"):
    ids = np.ones((batch, text_length), np.int32)
    inputs.update(input_ids=ids, attention_mask=np.ones_like(ids))
  if config.kind in ("vision", "vlm"):
    v = config.vision
    inputs["pixels"] = np.zeros((batch, v.image_size, v.image_size, v.num_channels), np.float32)
  if config.kind == "vlm":
    inputs["input_ids"][:, 1] = config.image_token_id
    inputs.update(question_ids=np.ones((batch, 4), np.int32),
                  question_mask=np.ones((batch, 4), np.int32))
  return inputs


def init(config, rng):
  """Boxed params (flax LogicallyPartitioned leaves) of a freshly initialized model."""
  return jax.jit(build(config).init)(rng, **dummy_inputs(config))["params"]


def abstract_params(config):
  """Boxed params as ShapeDtypeStructs: shapes and logical axes, no memory."""
  return jax.eval_shape(lambda: init(config, jax.random.PRNGKey(0)))


def param_count(config):
  import flax.linen as nn
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nn.unbox(abstract_params(config))))
