"""Stacking examples into a padded batch with bucketed sequence lengths.

The text length T of a batch is the smallest configured bucket that fits its
longest sequence, so jit sees only a few distinct shapes.
"""
import numpy as np

from vlm_jax.data.examples import IGNORE_INDEX

COUNTS_KEY = "_counts"  # skip/truncation counts riding along with a batch


def counts_only(counts):
  """An element or batch that carries counts and no example."""
  return {COUNTS_KEY: counts}


def _is_counts_only(element):
  return element.keys() == {COUNTS_KEY}


def bucket_length(length, bucket_lengths):
  """The smallest bucket >= length; past the largest, a multiple of the largest."""
  fitting = [b for b in sorted(bucket_lengths) if b >= length]
  if fitting:
    return fitting[0]
  largest = max(bucket_lengths)
  return -(-length // largest) * largest


def pad_to(rows, length, value, side):
  """[(t_i,)] -> (B, length) int32, each row padded with `value` on `side`."""
  out = np.full((len(rows), length), value, np.int32)
  for i, row in enumerate(rows):
    if side == "right":
      out[i, :len(row)] = row
    else:
      out[i, length - len(row):] = row
  return out


class Collate:
  """A grain batch_fn: examples -> batch of (B, T) ids, (B, H, W, 3) pixels, ...

  Prompt sequences (input_ids, labels, attention_mask) are padded on
  `padding_side` ("left" for generation) with (pad id, -100, 0); questions are
  always right-padded, so the last question token sits at question_mask.sum()-1.
  With `batch_size`, a short final batch is filled up with copies of its last
  example and `valid` (B,) bool marks the real rows. Counts-only elements add
  their counts and no row; a batch of nothing else is counts-only itself.
  """

  def __init__(self, *, pad_id, bucket_lengths, padding_side="right", batch_size=None):
    if padding_side not in ("left", "right"):
      raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    self.pad_id = pad_id
    self.bucket_lengths = tuple(bucket_lengths)
    self.padding_side = padding_side
    self.batch_size = batch_size

  def __call__(self, elements):
    counts = {}
    for element in elements:
      for name, value in element.get(COUNTS_KEY, {}).items():
        counts[name] = counts.get(name, 0) + value
    examples = [e for e in elements if not _is_counts_only(e)]
    if not examples:
      return counts_only(counts)
    valid = np.ones(len(examples), bool)
    if self.batch_size is not None and len(examples) < self.batch_size:
      valid = np.arange(self.batch_size) < len(examples)
      examples = list(examples) + [examples[-1]] * (self.batch_size - len(examples))
    length = bucket_length(max(len(e["input_ids"]) for e in examples), self.bucket_lengths)
    question_length = bucket_length(max(len(e["question_ids"]) for e in examples),
                                    self.bucket_lengths)
    batch = {
        "input_ids": pad_to([e["input_ids"] for e in examples], length, self.pad_id, self.padding_side),
        "attention_mask": pad_to([e["attention_mask"] for e in examples], length, 0,
                                 self.padding_side),
        "pixels": np.stack([e["pixels"] for e in examples]),
        "question_ids": pad_to([e["question_ids"] for e in examples], question_length,
                               self.pad_id, "right"),
        "question_mask": pad_to([e["question_mask"] for e in examples], question_length, 0, "right"),
        COUNTS_KEY: counts,
    }
    if "labels" in examples[0]:
      batch["labels"] = pad_to([e["labels"] for e in examples], length, IGNORE_INDEX,
                               self.padding_side)
    if "question_id" in examples[0]:
      batch["question_id"] = [e["question_id"] for e in examples]
      batch["answer"] = [e["answer"] for e in examples]
    if self.batch_size is not None:
      batch["valid"] = valid
    return batch
