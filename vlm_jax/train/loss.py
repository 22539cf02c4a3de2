"""Next-token cross-entropy on the assistant's answer tokens only."""
import jax.numpy as jnp
import optax

from vlm_jax.models import vlm

MODEL_INPUTS = ("input_ids", "attention_mask", "pixels", "question_ids", "question_mask")


def token_cross_entropy(logits, labels):
  """Summed float32 loss of logits (B, L, vocab) predicting labels (B, L) one step ahead.

  Position i predicts labels[:, i + 1]; labels equal to IGNORE_INDEX count for
  nothing. Returns (sum of losses, number of counted tokens).
  """
  targets = labels[:, 1:]
  counted = targets != vlm.IGNORE_INDEX
  losses = optax.softmax_cross_entropy_with_integer_labels(
      logits[:, :-1].astype(jnp.float32), jnp.where(counted, targets, 0))
  return jnp.sum(jnp.where(counted, losses, 0.0)), jnp.sum(counted)


def vlm_loss(model, params, batch, image_token_id, rng):
  """(sum of answer-token losses, answer-token count) of one batch (dict of (B, ...) arrays)."""
  logits = model.apply({"params": params}, **{k: batch[k] for k in MODEL_INPUTS},
                       rngs={"dropout": rng})
  num_visual_tokens = logits.shape[1] - batch["input_ids"].shape[1] + 1
  labels = vlm.expand_labels(batch["labels"], batch["input_ids"], num_visual_tokens,
                             image_token_id)
  return token_cross_entropy(logits, labels)
