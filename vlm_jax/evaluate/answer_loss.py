"""Answer-token cross-entropy: how likely a checkpoint finds a benchmark's reference answers.

For each question, the reference answer is teacher-forced after exactly the prompt the
generation pass feeds (image and question in the checkpoint's chat template, the
eval pipeline's own batches), and scored over the tokens training's loss counts: the
answer's, then the template's end of turn (vlm_jax.data.examples, vlm_jax.train.loss).
The result is the mean loss per token in nats over all the benchmark's answer tokens
(questions weighted by their token counts), and that count. A question with several
reference answers (VQA's ten) is scored on its most common one, ties going to the
first; annotations that are not answer texts (multiple choice, yes/no labels) are an
error. Questions the pipeline skips (a missing image) count for nothing.
"""
import collections

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from vlm_jax import errors, models, sharding
from vlm_jax.data.batching import bucket_length, pad_to
from vlm_jax.data.examples import IGNORE_INDEX, ExampleBuilder
from vlm_jax.data.records import conversation_rounds
from vlm_jax.data.templates import get_template
from vlm_jax.train import batches, loss


def reference_answer(annotation, benchmark):
  """The answer text of one question's annotation: the answer, or the most common of a
  list of answers (ties: the first)."""
  if isinstance(annotation, str):
    return annotation
  if isinstance(annotation, (list, tuple)) and annotation and all(
      isinstance(a, str) for a in annotation):
    return collections.Counter(annotation).most_common(1)[0][0]
  raise errors.BadValueError(
      f"answer_loss: {benchmark}'s annotations are not answer texts (e.g. {annotation!r:.100}); "
      "leave answer_loss off for it")


def reference_answers(annotations, benchmark):
  """{question_id: reference answer text}; None for a split without annotations."""
  if annotations is None:
    return None
  return {q: reference_answer(a, benchmark) for q, a in annotations.items()}


def labels_builder(data_config, tokenizer):
  """The training example builder of the eval data config: what `answer_ids` encodes with."""
  return ExampleBuilder(
      tokenizer=tokenizer,
      template=get_template(data_config.template, tokenizer, data_config.image_token),
      image_kind=data_config.image_preprocess, image_size=data_config.image_size,
      aspect=data_config.aspect, max_length=data_config.max_length,
      image_token_id=data_config.image_token_id)


def answer_ids(records, answers, builder):
  """{record id: the ids training's loss counts in the record answered by answers[id]}:
  the answer's tokens and the template's end of turn."""
  out = {}
  for record in records:
    turns = record["conversations"] + [{"from": "gpt", "value": answers[record["id"]]}]
    _, labels = builder.encode(builder.template.conversation(conversation_rounds(turns)))
    out[record["id"]] = [label for label in labels if label != IGNORE_INDEX]
  return out


def with_answers(batch, answers, pad_id, bucket_lengths):
  """A generation batch -> its loss batch: each row's prompt, then its answer's ids.

  batch: the eval pipeline's, prompts left-padded (B, T), with question_id and valid (B,).
  answers: {question_id: answer ids}. Returns the batch with input_ids, attention_mask and
  labels (B, L), right-padded to L, the bucket of the longest prompt + answer; labels are
  the answer's ids where they stand, IGNORE_INDEX elsewhere and on the rows not valid.
  """
  prompts = [ids[mask > 0] for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]
  targets = [np.asarray(answers[q] if valid else [], np.int32)
             for q, valid in zip(batch["question_id"], batch["valid"])]
  length = bucket_length(max(len(p) + len(t) for p, t in zip(prompts, targets)),
                         bucket_lengths)
  pad = lambda rows, value: pad_to(rows, length, value, "right")
  return {**batch,
          "input_ids": pad([np.concatenate([p, t]) for p, t in zip(prompts, targets)], pad_id),
          "attention_mask": pad([np.ones(len(p) + len(t)) for p, t in zip(prompts, targets)], 0),
          "labels": pad([np.concatenate([np.full(len(p), IGNORE_INDEX), t])
                         for p, t in zip(prompts, targets)], IGNORE_INDEX)}


def summed_loss(model_config, mesh):
  """-> jitted (params, global batch) -> (sum of the answer-token losses, their count), the
  training loss of `model_config`'s model, replicated over `mesh`."""
  model = models.build(model_config)
  return jax.jit(
      lambda params, batch: loss.vlm_loss(model, params, batch, model_config.image_token_id,
                                          jax.random.PRNGKey(0)),
      out_shardings=NamedSharding(mesh, PartitionSpec()))


def measure(loss_fn, params, batch_stream, answers, pad_id, bucket_lengths, mesh):
  """{answer_ce: nats per answer token, answer_ce_tokens: count} over `batch_stream`.

  loss_fn: `summed_loss`'s; batch_stream: this process's eval batches of the questions,
  idle batches (no valid row) while another process still has some; answers: `answer_ids`
  of this process's questions. Every process steps together and gets the same totals.
  """
  total, count = 0.0, 0
  with sharding.activate(mesh):
    for batch in batch_stream:
      rows = batches.global_batch(with_answers(batch, answers, pad_id, bucket_lengths), mesh)
      batch_total, batch_count = loss_fn(params, rows)
      total, count = total + float(batch_total), count + int(batch_count)
  return row_fields(total, count)


def row_fields(total, count):
  """A row's answer_ce (nats per token; nan where no token was scored) and answer_ce_tokens,
  of the summed loss `total` of `count` answer tokens."""
  return {"answer_ce": total / count if count else float("nan"), "answer_ce_tokens": count}
