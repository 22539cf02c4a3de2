"""Prefill and cached decode steps: pure functions of (model, params, ...).

The KV cache has a fixed length S = L + max_new_tokens (L the prefill length),
and the slot a step writes is a traced index, so one compiled step serves every
position and its cost does not grow with the output.
"""
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vlm_jax.generate.sampling import next_token
from vlm_jax.models.llm import positions_from_mask
from vlm_jax.models.vlm import VLM


class Settings(NamedTuple):
  """Static decoding choices; temperature 0 is greedy."""
  max_new_tokens: int
  eos_ids: tuple = ()
  pad_id: int = 0
  temperature: float = 0.0
  top_p: float = 1.0


class DecodeState(NamedTuple):
  """What the decode loop carries: B sequences, N = max_new_tokens, S cache slots."""
  cache: dict  # {"k", "v"}: (layers, B, S, kv_heads, head_dim)
  slot_valid: jax.Array  # (B, S) bool: the slot holds a written, non-padding token
  positions: jax.Array  # (B,) int32: position of the last emitted token, fed next
  tokens: jax.Array  # (B, N) int32: emitted tokens, pad_id once a sequence is done
  done: jax.Array  # (B,) bool
  step: jax.Array  # () int32: tokens emitted so far
  rng: jax.Array


def _decoder(module):
  return module.llm if isinstance(module, VLM) else module


def _prompt_embeddings(module, inputs):
  """-> embeds (B, L, D), mask (B, L); for a VLM the image tokens are spliced in."""
  if isinstance(module, VLM):
    return module.embed_multimodal(inputs["input_ids"], inputs["attention_mask"],
                                   inputs["pixels"], inputs.get("question_ids"),
                                   inputs.get("question_mask"))
  return module.embed_tokens(inputs["input_ids"]), inputs["attention_mask"]


def _run_prompt(module, inputs, max_new_tokens):
  """-> logits (B, vocab) after the prompt, cache, slot_valid (B, S), prompt mask (B, L)."""
  embeds, mask = _prompt_embeddings(module, inputs)
  batch, length = mask.shape
  cache_length = length + max_new_tokens
  slot_valid = jnp.concatenate([mask > 0, jnp.zeros((batch, max_new_tokens), bool)], axis=1)
  llm = _decoder(module)
  cfg = llm.config
  shape = (cfg.num_layers, batch, cache_length, cfg.num_kv_heads, cfg.head_dim)
  cache = {"k": jnp.zeros(shape, llm.dtype), "v": jnp.zeros(shape, llm.dtype)}
  # The prompt attends among itself (a padding mask: the config's attention implementation,
  # splash on TPU); the decode steps below read the cache by slot (xla).
  hidden, cache = llm.hidden_states(embeds, mask, positions_from_mask(mask), cache, 0)
  # Left padding puts every sequence's last prompt token in the last column.
  return llm.logits(hidden[:, -1:])[:, 0], cache, slot_valid, mask


def _run_token(module, tokens, positions, cache, slot_valid, slot):
  """One token per sequence: tokens, positions (B, 1) -> logits (B, vocab), new cache."""
  llm = _decoder(module)
  hidden, cache = llm.hidden_states(llm.embed_tokens(tokens), slot_valid[:, None], positions,
                                    cache, slot)
  return llm.logits(hidden)[:, 0], cache


def _emit(state, logits, settings):
  """Chooses each sequence's next token from logits (B, vocab) and records it."""
  token = next_token(logits, jax.random.fold_in(state.rng, state.step), settings.temperature,
                     settings.top_p)
  token = jnp.where(state.done, settings.pad_id, token)
  tokens = jax.lax.dynamic_update_slice_in_dim(state.tokens, token[:, None], state.step, axis=1)
  done = state.done | jnp.isin(token, jnp.asarray(settings.eos_ids, jnp.int32))
  return state._replace(tokens=tokens, done=done, step=state.step + 1)


def prefill(model, params, inputs, rng, settings):
  """The whole prompt in one pass, writing the cache, and the first new token.

  inputs: left-padded input_ids / attention_mask (B, T) (and for a VLM pixels,
  optional question_ids / question_mask) -> DecodeState with step 1.
  """
  n = settings.max_new_tokens
  logits, cache, slot_valid, mask = model.apply(
      {"params": params}, inputs, n, method=_run_prompt)
  batch = mask.shape[0]
  state = DecodeState(
      cache=cache, slot_valid=slot_valid, positions=jnp.sum(mask, axis=1, dtype=jnp.int32),
      tokens=jnp.full((batch, n), settings.pad_id, jnp.int32), done=jnp.zeros(batch, bool),
      step=jnp.zeros((), jnp.int32), rng=rng)
  return _emit(state, logits, settings)


def decode_step(model, params, state, settings):
  """Feeds the last emitted token at cache slot S - N + step - 1 and emits the next one."""
  n = settings.max_new_tokens
  slot = state.slot_valid.shape[1] - n + state.step - 1
  last = jax.lax.dynamic_slice_in_dim(state.tokens, state.step - 1, 1, axis=1)
  slot_valid = jax.lax.dynamic_update_slice_in_dim(
      state.slot_valid, jnp.ones_like(last, bool), slot, axis=1)
  logits, cache = model.apply({"params": params}, last, state.positions[:, None], state.cache,
                              slot_valid, slot, method=_run_token)
  state = state._replace(cache=cache, slot_valid=slot_valid, positions=state.positions + 1)
  return _emit(state, logits, settings)


def decode(model, params, state, settings):
  """Steps until every sequence is done or N tokens are out -> the final DecodeState, its
  tokens (B, N). It returns the whole state so that a caller donating `state` has the loop
  run in its buffers (the cache is not copied)."""
  def running(s):
    return (s.step < settings.max_new_tokens) & ~jnp.all(s.done)

  return jax.lax.while_loop(running, lambda s: decode_step(model, params, s, settings), state)
