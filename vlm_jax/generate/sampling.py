"""The next token from logits: greedy, or temperature with nucleus (top-p) sampling."""
import jax
import jax.numpy as jnp


def nucleus(logits, top_p):
  """(B, vocab) -> the same with -inf outside the nucleus.

  The nucleus is the smallest set of most likely tokens whose probability
  reaches `top_p`; the most likely token is always in it.
  """
  ranked = jnp.flip(jnp.sort(logits, axis=-1), axis=-1)
  probs = jax.nn.softmax(ranked, axis=-1)
  mass_before = jnp.cumsum(probs, axis=-1) - probs
  cutoff = jnp.min(jnp.where(mass_before < top_p, ranked, jnp.inf), axis=-1, keepdims=True)
  return jnp.where(logits >= cutoff, logits, -jnp.inf)


def next_token(logits, rng, temperature, top_p):
  """logits (B, vocab) -> (B,) int32; argmax when temperature == 0 (rng unused)."""
  if temperature == 0:
    return jnp.argmax(logits, axis=-1).astype(jnp.int32)
  logits = logits.astype(jnp.float32) / temperature
  if top_p < 1:
    logits = nucleus(logits, top_p)
  return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)
