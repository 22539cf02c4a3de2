"""The grain input pipeline: records -> examples -> bucketed, padded batches.

  records[shard_index::shard_count] -> shuffle(seed) -> repeat(num_epochs)
  -> ExampleBuilder (threads) -> drop and count skips -> Collate batches

Each host reads only its own shard. The order is a pure function of the seed
(and worker_count), and an iterator's state (a JSON-serialisable dict)
resumes it exactly.
"""
import logging

import grain
from absl import flags

from vlm_jax.data import config as config_lib
from vlm_jax.data.batching import COUNTS_KEY, Collate, counts_only
from vlm_jax.data.examples import COUNTERS, ExampleBuilder, Skip
from vlm_jax.data.records import DataError
from vlm_jax.data.sources import load_records
from vlm_jax.data.templates import get_template
from vlm_jax.data.tokenizer import load_tokenizer
from vlm_jax.errors import BadValueError

log = logging.getLogger(__name__)


def make_dataset(config, *, shard_index=0, shard_count=1):
  """Training batches of this host's shard: a Loader (iterable, resumable).

  Each batch: input_ids, labels, attention_mask (B, T) int32, pixels
  (B, H, W, 3) float32, question_ids, question_mask (B, Tq) int32, with T and
  Tq from config.bucket_lengths.
  """
  return _make_loader(config, shard_index, shard_count, for_generation=False)


def make_eval_examples(config, *, shard_index=0, shard_count=1, records=None):
  """Evaluation batches in record order: a Loader over one pass of the split.

  Each batch: input_ids, attention_mask (B, T) int32 (the prompt up to the
  assistant's turn, left-padded), pixels, question_ids, question_mask,
  question_id and answer (lists of B strings), valid (B,) bool (False on the
  rows that fill up the last batch). Prompts are not truncated: one longer
  than every bucket pads to a multiple of the largest. `records` (a sequence of
  records, e.g. a benchmark's questions) replaces config.source; a record
  without a reference answer has answer None.
  """
  return _make_loader(config, shard_index, shard_count, for_generation=True, records=records)


def _make_loader(config, shard_index, shard_count, *, for_generation, records=None):
  config = config_lib.resolve(config)
  if not 0 <= shard_index < shard_count:
    raise ValueError(f"shard_index={shard_index} must lie in [0, shard_count={shard_count})")
  tokenizer = load_tokenizer(config.tokenizer)
  _check_image_token(config, tokenizer)
  records = load_records(config) if records is None else records
  dataset = grain.MapDataset.source(records)[shard_index::shard_count]
  shard_size = len(dataset)
  if shard_size == 0:
    raise ValueError(f"shard {shard_index} of {shard_count} holds none of the {len(records)} "
                     f"records of {config.source}:{config.split}")
  if not for_generation:
    if config.shuffle:
      dataset = dataset.shuffle(seed=config.seed)
    dataset = dataset.repeat(config.num_epochs)
  builder = ExampleBuilder(
      tokenizer=tokenizer, template=get_template(config.template, tokenizer, config.image_token),
      image_kind=config.image_preprocess, image_size=config.image_size, aspect=config.aspect,
      image_mean=config.image_mean, image_std=config.image_std,
      max_length=config.max_length, image_token_id=config.image_token_id,
      for_generation=for_generation)
  read_options = grain.ReadOptions(num_threads=config.read_threads,
                                   prefetch_buffer_size=2 * config.batch_size)
  drop_remainder = config.drop_remainder and not for_generation
  batches = SkipCounter(dataset.map(builder).to_iter_dataset(read_options), strict=config.strict,
                        count_trailing_skips=not drop_remainder)
  batches = batches.batch(
      config.batch_size, drop_remainder=drop_remainder,
      batch_fn=Collate(pad_id=tokenizer.pad_id, bucket_lengths=config.bucket_lengths,
                       padding_side="left" if for_generation else config.padding_side,
                       batch_size=config.batch_size if for_generation else None))
  if config.worker_count:
    # Grain's worker processes read absl flags; outside absl.app.run nobody parsed them.
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    batches = batches.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.worker_count))
  return Loader(batches, num_records=shard_size, tokenizer=tokenizer)


def _check_image_token(config, tokenizer):
  """The placeholder is a negative id (LLaVA's -200) or the tokenizer's own image token (as
  in LlavaForConditionalGeneration checkpoints), never another real token."""
  if not 0 <= config.image_token_id < len(tokenizer):
    return
  own = tokenizer.hf_tokenizer.convert_tokens_to_ids(config.image_token)
  if own != config.image_token_id:
    raise BadValueError(f"data.image_token_id={config.image_token_id} is a real token id of the "
                        f"vocabulary (size {len(tokenizer)}) and not that of the image token "
                        f"{config.image_token!r} ({own}); use the image token's id or a "
                        "negative placeholder such as -200")


class SkipCounter(grain.IterDataset):
  """Drops Skip markers (a warning each, or DataError when strict) and counts them.

  The counts since the previous example ride on the next example under
  COUNTS_KEY, so they survive worker processes and batching. With
  `count_trailing_skips`, the skips after the last example leave as a final
  counts-only element, which Collate and LoaderIterator turn into counts
  alone. Without it they are lost, as when the batcher drops the remainder:
  that element would be dropped with it or, completing the last batch, leave
  that batch a row short.
  """

  def __init__(self, parent, *, strict, count_trailing_skips):
    super().__init__(parent)
    self._strict = strict
    self._count_trailing_skips = count_trailing_skips

  def __iter__(self):
    return _SkipCounterIterator(self._parent.__iter__(), strict=self._strict,
                                count_trailing_skips=self._count_trailing_skips)


class _SkipCounterIterator(grain.DatasetIterator):

  def __init__(self, parent, *, strict, count_trailing_skips):
    super().__init__(parent)
    self._strict = strict
    self._count_trailing_skips = count_trailing_skips
    self._pending = {}

  def __next__(self):
    while True:
      try:
        element = next(self._parent)
      except StopIteration:
        if not (self._count_trailing_skips and self._pending):
          raise
        counts, self._pending = self._pending, {}
        return counts_only(counts)
      if isinstance(element, Skip):
        if self._strict:
          raise DataError(element.message())
        log.warning(element.message())
        self._pending[element.reason] = self._pending.get(element.reason, 0) + 1
        continue
      counts, self._pending = self._pending, {}
      if element.pop("truncated"):
        counts["truncated"] = counts.get("truncated", 0) + 1
      element[COUNTS_KEY] = counts
      return element

  def get_state(self):
    return {"parent": self._parent.get_state(), "pending": dict(self._pending)}

  def set_state(self, state):
    self._parent.set_state(state["parent"])
    self._pending = dict(state["pending"])


class Loader:
  """Iterable over batches (dicts of numpy arrays); each `iter` starts afresh.

  `num_records` is the number of records in this host's shard (one pass);
  `tokenizer` the TextTokenizer used.
  """

  def __init__(self, dataset, *, num_records, tokenizer):
    self._dataset = dataset
    self.num_records = num_records
    self.tokenizer = tokenizer

  def __iter__(self):
    return LoaderIterator(self._dataset.__iter__())


class LoaderIterator:
  """Batches, with running `counters` (COUNTERS -> int) for logging as metrics.

  Counters cover the records read up to the last batch returned, and every
  record once the iterator is exhausted (eval passes, and training passes that
  keep the remainder). `get_state()`
  is a JSON-serialisable dict (position and counters); `set_state` on a
  fresh iterator of the same Loader resumes exactly where it was taken.
  """

  def __init__(self, iterator):
    self._iterator = iterator
    self.counters = dict.fromkeys(COUNTERS, 0)

  def __iter__(self):
    return self

  def __next__(self):
    while True:
      batch = next(self._iterator)
      for name, value in batch.pop(COUNTS_KEY).items():
        self.counters[name] += value
      if batch:  # else counts alone: the skips after a pass's last example
        return batch

  def get_state(self):
    return {"pipeline": self._iterator.get_state(), "counters": dict(self.counters)}

  def set_state(self, state):
    self._iterator.set_state(state["pipeline"])
    self.counters = {**dict.fromkeys(COUNTERS, 0), **state["counters"]}  # older states lack new ones

  def close(self):
    """Stops grain's worker processes and frees their shared memory."""
    self._iterator.close()
