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
from vlm_jax.data.batching import COUNTS_KEY, Collate
from vlm_jax.data.examples import COUNTERS, ExampleBuilder, Skip
from vlm_jax.data.records import DataError
from vlm_jax.data.sources import load_records
from vlm_jax.data.templates import TEMPLATES
from vlm_jax.data.tokenizer import load_tokenizer

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
  if 0 <= config.image_token_id < len(tokenizer):
    raise ValueError(f"data.image_token_id={config.image_token_id} is a real token id of the "
                     f"vocabulary (size {len(tokenizer)}); use a negative placeholder such as -200")
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
      tokenizer=tokenizer, template=TEMPLATES.get(config.template),
      image_kind=config.image_preprocess, image_size=config.image_size, aspect=config.aspect,
      max_length=config.max_length, image_token_id=config.image_token_id,
      for_generation=for_generation)
  read_options = grain.ReadOptions(num_threads=config.read_threads,
                                   prefetch_buffer_size=2 * config.batch_size)
  batches = SkipCounter(dataset.map(builder).to_iter_dataset(read_options), strict=config.strict)
  batches = batches.batch(
      config.batch_size, drop_remainder=config.drop_remainder and not for_generation,
      batch_fn=Collate(pad_id=tokenizer.pad_id, bucket_lengths=config.bucket_lengths,
                       padding_side="left" if for_generation else config.padding_side,
                       batch_size=config.batch_size if for_generation else None))
  if config.worker_count:
    # Grain's worker processes read absl flags; outside absl.app.run nobody parsed them.
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    batches = batches.mp_prefetch(grain.MultiprocessingOptions(num_workers=config.worker_count))
  return Loader(batches, num_records=shard_size, tokenizer=tokenizer)


class SkipCounter(grain.IterDataset):
  """Drops Skip markers (a warning each, or DataError when strict) and counts them.

  The counts since the previous example ride on the next example under
  COUNTS_KEY, so they survive worker processes and batching.
  """

  def __init__(self, parent, *, strict):
    super().__init__(parent)
    self._strict = strict

  def __iter__(self):
    return _SkipCounterIterator(self._parent.__iter__(), strict=self._strict)


class _SkipCounterIterator(grain.DatasetIterator):

  def __init__(self, parent, *, strict):
    super().__init__(parent)
    self._strict = strict
    self._pending = {}

  def __next__(self):
    while True:
      element = next(self._parent)
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

  Counters cover the records read up to the last batch returned. `get_state()`
  is a JSON-serialisable dict (position and counters); `set_state` on a
  fresh iterator of the same Loader resumes exactly where it was taken.
  """

  def __init__(self, iterator):
    self._iterator = iterator
    self.counters = dict.fromkeys(COUNTERS, 0)

  def __iter__(self):
    return self

  def __next__(self):
    batch = next(self._iterator)
    for name, value in batch.pop(COUNTS_KEY).items():
      self.counters[name] += value
    return batch

  def get_state(self):
    return {"pipeline": self._iterator.get_state(), "counters": dict(self.counters)}

  def set_state(self, state):
    self._iterator.set_state(state["pipeline"])
    self.counters = dict(state["counters"])

  def close(self):
    """Stops grain's worker processes and frees their shared memory."""
    self._iterator.close()
