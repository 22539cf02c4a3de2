"""Next-token cross-entropy on the assistant's answer tokens only.

`vlm_loss` either applies the LM head to every position at once (the model's logits,
(B, L, vocab) float32) or, given `chunk_positions`, one chunk of positions at a time,
so that training never holds the whole batch's logits nor their gradient.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from vlm_jax.models import vlm

MODEL_INPUTS = ("input_ids", "attention_mask", "pixels", "question_ids", "question_mask")


def summed_cross_entropy(logits, targets):
  """logits (..., vocab), targets (...) -> (float32 sum of the losses of the targets that
  are not IGNORE_INDEX, their count)."""
  counted = targets != vlm.IGNORE_INDEX
  losses = optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), jnp.where(counted, targets, 0))
  return jnp.sum(jnp.where(counted, losses, 0.0)), jnp.sum(counted)


def token_cross_entropy(logits, labels):
  """Summed float32 loss of logits (B, L, vocab) predicting labels (B, L) one step ahead.

  Position i predicts labels[:, i + 1]; labels equal to IGNORE_INDEX count for
  nothing. Returns (sum of losses, number of counted tokens).
  """
  return summed_cross_entropy(logits[:, :-1], labels[:, 1:])


def chunked_token_cross_entropy(head, hidden, labels, chunk_positions):
  """token_cross_entropy(head(hidden), labels) with one chunk's logits alive at a time.

  head: hidden (B, c, D) -> logits (B, c, vocab); hidden (B, L, D); labels (B, L).
  A chunk is the next c positions of every row, c at most max(1, chunk_positions // B)
  and as even a split of L as that allows (the last chunk padded), so each chunk
  spreads over the batch shards as the rows do. The scan body is rematerialized: the
  backward pass recomputes each chunk's logits from its hidden states and the head's
  params instead of keeping them. A batch that is one chunk keeps its logits: they are
  then no more than a chunk's, and recomputing them would only cost time.
  """
  rows, length = labels.shape
  chunks = -(-length // max(1, chunk_positions // rows))
  if chunks == 1:
    return token_cross_entropy(head(hidden), labels)
  per_chunk = -(-length // chunks)
  pad = chunks * per_chunk - length
  # The last position predicts nothing.
  targets = jnp.pad(labels[:, 1:], ((0, 0), (0, pad + 1)), constant_values=vlm.IGNORE_INDEX)
  hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))

  def by_chunk(x, axes):
    """(B, chunks * c, ...) -> (chunks, B, c, ...)."""
    x = x.reshape(rows, chunks, per_chunk, *x.shape[2:]).swapaxes(0, 1)
    return nn.with_logical_constraint(x, (None, "act_batch", "act_length") + axes)

  @jax.checkpoint
  def add_chunk(sums, chunk):
    chunk_hidden, chunk_targets = chunk
    chunk_sums = summed_cross_entropy(head(chunk_hidden), chunk_targets)
    return jax.tree.map(jnp.add, sums, chunk_sums), None

  zeros = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
  sums, _ = jax.lax.scan(add_chunk, zeros,
                         (by_chunk(hidden, ("act_embed",)), by_chunk(targets, ())))
  return sums


def answer_labels(batch, length, image_token_id):
  """The batch's (B, T) labels spread over the model's (B, length) positions."""
  num_visual_tokens = length - batch["input_ids"].shape[1] + 1
  return vlm.expand_labels(batch["labels"], batch["input_ids"], num_visual_tokens,
                           image_token_id)


def vlm_loss(model, params, batch, image_token_id, rng, chunk_positions=None,
             image_inputs=None):
  """(sum of answer-token losses, answer-token count) of one batch (dict of (B, ...) arrays).

  chunk_positions: 0 or None: the model's logits of the whole batch at once; else the
  head applied by `chunked_token_cross_entropy` over chunks of about this many positions.
  image_inputs: the model's `image_inputs` of the batch, when computed already.
  """
  variables = {"params": params}
  inputs = {k: batch[k] for k in MODEL_INPUTS}
  if not chunk_positions:
    logits = model.apply(variables, **inputs, image_inputs=image_inputs, rngs={"dropout": rng})
    return token_cross_entropy(logits, answer_labels(batch, logits.shape[1], image_token_id))
  hidden = model.apply(variables, **inputs, image_inputs=image_inputs, rngs={"dropout": rng},
                       method=model.hidden_states)
  head_variables = {"params": vlm.head_params(params, model.config)}
  head = lambda h: model.apply(head_variables, h, method=model.logits)
  return chunked_token_cross_entropy(
      head, hidden, answer_labels(batch, hidden.shape[1], image_token_id), chunk_positions)


def mean_budget_loss(budget_models, params, batch, image_token_id, rng, chunk_positions=None):
  """`vlm_loss` averaged over the models of one params tree at several budgets.

  The vision tower and query pass run once, their outputs shared by every budget. The
  answer tokens are the same at every budget, so (mean of the loss sums, count) divides
  to the mean of the per-budget losses.
  """
  first = budget_models[0]
  image_inputs = first.apply({"params": params}, batch["pixels"], batch["question_ids"],
                             batch["question_mask"], method=first.image_inputs)
  sums = [vlm_loss(model, params, batch, image_token_id, rng, chunk_positions, image_inputs)
          for model in budget_models]
  return sum(total for total, _ in sums) / len(sums), sums[0][1]
