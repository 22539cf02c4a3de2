"""Batched generation with jitted prefill / decode reused across batches, on a mesh."""
import jax
import numpy as np
from jax.experimental import multihost_utils

from vlm_jax import sharding
from vlm_jax.data.batching import bucket_length
from vlm_jax.generate import decoding, sharded

DEFAULT_BUCKETS = (32, 64, 128, 256, 512, 1024, 2048)


def _pad_columns(x, length, value, side):
  """(B, T) -> (B, length), `value` added on `side`."""
  extra = length - x.shape[1]
  return np.pad(x, ((0, 0), (extra, 0) if side == "left" else (0, extra)), constant_values=value)


def _check_prompts(input_ids, attention_mask, image_token_id):
  if input_ids.ndim != 2 or input_ids.shape != attention_mask.shape:
    raise ValueError(f"input_ids {input_ids.shape} and attention_mask {attention_mask.shape} "
                     "must have the same (batch, length) shape")
  if not np.isin(attention_mask, (0, 1)).all():
    raise ValueError("attention_mask must hold only 0 and 1")
  if (np.diff(attention_mask, axis=1) < 0).any() or (attention_mask[:, -1] != 1).any():
    raise ValueError("prompts must be left-padded (mask 0...0 1...1) with at least one token")
  if image_token_id is not None:
    placeholders = input_ids == image_token_id
    counts = placeholders.sum(axis=1)
    if (counts != 1).any() or (attention_mask[placeholders] != 1).any():
      raise ValueError(f"every prompt needs exactly one image placeholder {image_token_id} among "
                       f"its tokens; counts per sequence: {counts.tolist()}")


class Generator:
  """Greedy or sampled generation for one model config and one set of settings.

  The jitted `prefill`, `decode` and `step` (vlm_jax.generate.sharded, the programs
  `vlm-jax compile` compiles) keep one compiled program per input shape; prompts (and
  questions) are padded up to a bucket length so a stream of batches of one batch size
  compiles only a few times. They run on `mesh` (default: the first device), params placed
  by `sharded.param_shardings`; `decode` and `step` donate the state they are given.
  Called directly on a mesh of several devices, they want `sharding.activate(mesh)`
  around them, as `__call__` has.
  """

  def __init__(self, model_config, *, max_new_tokens, eos_id=None, pad_id=0, temperature=0.0,
               top_p=1.0, prompt_buckets=DEFAULT_BUCKETS, mesh=None):
    if max_new_tokens < 1:
      raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
      raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    if model_config.kind not in ("llm", "vlm"):
      raise ValueError(f"cannot generate with a model of kind {model_config.kind!r}")
    self.is_vlm = model_config.kind == "vlm"
    self.image_token_id = model_config.image_token_id if self.is_vlm else None
    if pad_id == self.image_token_id:
      raise ValueError(f"pad_id {pad_id} is the image placeholder id")
    eos_ids = () if eos_id is None else tuple(np.atleast_1d(eos_id).tolist())
    self.settings = decoding.Settings(max_new_tokens, eos_ids, pad_id, float(temperature),
                                      float(top_p))
    self.prompt_buckets = tuple(prompt_buckets or ())
    self.mesh = sharding.make_mesh(devices=jax.devices()[:1]) if mesh is None else mesh
    self.programs = sharded.build(model_config, self.settings, self.mesh)
    self.prefill, self.step, self.decode = (self.programs.prefill, self.programs.step,
                                            self.programs.decode)

  def _bucket(self, length):
    return bucket_length(length, self.prompt_buckets) if self.prompt_buckets else length

  def prepare(self, input_ids, attention_mask, pixels=None, question_ids=None,
              question_mask=None):
    """Checks the inputs and pads them to bucket lengths -> the dict `prefill` takes."""
    input_ids, attention_mask = np.asarray(input_ids), np.asarray(attention_mask)
    _check_prompts(input_ids, attention_mask, self.image_token_id)
    length = self._bucket(input_ids.shape[1])
    inputs = {
        "input_ids": _pad_columns(input_ids, length, self.settings.pad_id, "left").astype(np.int32),
        "attention_mask": _pad_columns(attention_mask, length, 0, "left").astype(np.int32)}
    if not self.is_vlm:
      if pixels is not None or question_ids is not None:
        raise ValueError("a text-only model takes no pixels or question")
      return inputs
    if pixels is None or len(pixels) != len(input_ids):
      raise ValueError(f"a VLM needs pixels for each of the {len(input_ids)} prompts")
    inputs["pixels"] = np.asarray(pixels, np.float32)
    if (question_ids is None) != (question_mask is None):
      raise ValueError("question_ids and question_mask go together")
    if question_ids is not None:
      question_ids, question_mask = np.asarray(question_ids), np.asarray(question_mask)
      if question_ids.shape != question_mask.shape or len(question_ids) != len(input_ids):
        raise ValueError(f"question_ids {question_ids.shape} and question_mask "
                         f"{question_mask.shape} must be (batch, length) like the prompts")
      length = self._bucket(question_ids.shape[1])
      inputs["question_ids"] = _pad_columns(question_ids, length, self.settings.pad_id,
                                            "right").astype(np.int32)
      inputs["question_mask"] = _pad_columns(question_mask, length, 0, "right").astype(np.int32)
    return inputs

  def __call__(self, params, input_ids, attention_mask, *, pixels=None, question_ids=None,
               question_mask=None, rng=None, active=None):
    """Left-padded prompts (b, T) -> generated ids (b, max_new_tokens), pad_id after EOS.

    On several processes every one calls at once with its own b rows, and the batch is
    theirs in process order; the mesh's batch shards (data x fsdp) must split the
    processes' rows (one block of rows each). active (b,) bool: the rows to generate
    for (default all); the others stop after the first token, so they never keep the
    decode loop running.
    """
    if self.settings.temperature > 0 and rng is None:
      raise ValueError("sampling (temperature > 0) needs an rng")
    inputs = self.prepare(input_ids, attention_mask, pixels, question_ids, question_mask)
    with sharding.activate(self.mesh):
      state = self.prefill(params, self._global_rows(self._pad_to_longest_process(inputs)),
                           jax.random.PRNGKey(0) if rng is None else rng)
      if active is not None:
        state = state._replace(done=state.done | ~self._global_rows(np.asarray(active, bool)))
      tokens = self.decode(params, state).tokens
    return np.asarray(multihost_utils.global_array_to_host_local_array(
        tokens, self.mesh, self.programs.rows.spec))

  def _pad_to_longest_process(self, inputs):
    """Prompts (left) and questions (right) padded to the longest over the processes,
    whose rows form one batch; unchanged on one process."""
    if jax.process_count() == 1:
      return inputs
    texts = [("input_ids", "attention_mask", "left"), ("question_ids", "question_mask", "right")]
    texts = [text for text in texts if text[0] in inputs]
    lengths = np.array([inputs[ids].shape[1] for ids, _, _ in texts])
    longest = np.max(multihost_utils.process_allgather(lengths), axis=0)
    padded = dict(inputs)
    for (ids, mask, side), length in zip(texts, longest):
      padded[ids] = _pad_columns(inputs[ids], length, self.settings.pad_id, side)
      padded[mask] = _pad_columns(inputs[mask], length, 0, side)
    return padded

  def _global_rows(self, local):
    """This process's rows (a numpy tree) -> global Arrays, rows over data x fsdp."""
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(self.programs.rows, x), local)


def generate(model_config, params, input_ids, attention_mask, *, pixels=None, question_ids=None,
             question_mask=None, max_new_tokens, eos_id=None, pad_id=0, temperature=0.0,
             top_p=1.0, rng=None):
  """One batch -> generated ids (B, max_new_tokens) as np.int32.

  Compiles on every call; build a `Generator` once to reuse the compiled
  functions across batches.
  """
  generator = Generator(model_config, max_new_tokens=max_new_tokens, eos_id=eos_id,
                        pad_id=pad_id, temperature=temperature, top_p=top_p)
  return generator(params, input_ids, attention_mask, pixels=pixels, question_ids=question_ids,
                   question_mask=question_mask, rng=rng)
