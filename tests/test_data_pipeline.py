"""The grain pipeline: bucketing, padding, sharding, determinism, resumable state."""
import json
import os

import ml_collections
import numpy as np
import pytest

from vlm_jax import data
from vlm_jax.data import config as data_config
from vlm_jax.data import procedural, sources
from vlm_jax.data.examples import IGNORE_INDEX

BUCKETS = (16, 32, 48, 64)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("procedural"))


def config(cache_dir, **overrides):
  values = dict(source="procedural", task="counting", split="train", num_examples=40,
                cache_dir=cache_dir, image_size=16, max_length=64, bucket_lengths=BUCKETS,
                batch_size=4, seed=7, read_threads=2)
  values.update(overrides)
  return ml_collections.ConfigDict(values)


def take(iterator, count):
  return [next(iterator) for _ in range(count)]


def assert_batches_equal(first, second):
  assert len(first) == len(second)
  for a, b in zip(first, second):
    assert a.keys() == b.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


def test_batches_are_right_padded_to_the_smallest_fitting_bucket(cache_dir, tmp_path):
  image = procedural.generate("counting", "train", num_examples=40, cache_dir=cache_dir)[0]["image"]
  words = "one two three four five six seven eight nine ten eleven twelve".split()
  items = [{"id": str(i), "image": image, "conversations": [
      {"from": "human", "value": "<image>\nCount" + " up" * (i // 3) + "?"},
      {"from": "gpt", "value": " ".join(["zero"] + words[:i])}]} for i in range(30)]
  json_path = tmp_path / "lengths.json"
  json_path.write_text(json.dumps(items))
  loader = data.make_dataset(config(cache_dir, source="llava_json", json_path=str(json_path),
                                    num_epochs=1, shuffle=False, batch_size=3))
  lengths = set()
  for batch in loader:
    mask = batch["attention_mask"]
    assert mask.shape[1] == min(b for b in BUCKETS if b >= mask.sum(1).max())
    lengths.add(mask.shape[1])
    for row in range(mask.shape[0]):
      real = mask[row].sum()
      assert (mask[row, :real] == 1).all() and (mask[row, real:] == 0).all()
      assert (batch["input_ids"][row, real:] == loader.tokenizer.pad_id).all()
      assert (batch["labels"][row, real:] == IGNORE_INDEX).all()
      assert (batch["input_ids"][row] == -200).sum() == 1
    question_mask = batch["question_mask"]
    assert question_mask.shape[1] == min(b for b in BUCKETS if b >= question_mask.sum(1).max())
    assert batch["pixels"].shape == (3, 16, 16, 3) and batch["pixels"].dtype == np.float32
  assert len(lengths) >= 2  # the data really spans several buckets


def test_same_seed_same_batches_other_seed_other_order(cache_dir):
  first = take(iter(data.make_dataset(config(cache_dir))), 5)
  assert_batches_equal(first, take(iter(data.make_dataset(config(cache_dir))), 5))
  other = take(iter(data.make_dataset(config(cache_dir, seed=8))), 5)
  assert any(not np.array_equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, other))


def test_epochs_cover_every_record_and_reshuffle(cache_dir):
  loader = data.make_dataset(config(cache_dir, num_epochs=2, batch_size=1, image_size=4))
  questions = [tuple(b["question_ids"][0]) + tuple(b["labels"][0]) for b in loader]
  epoch_one, epoch_two = questions[:40], questions[40:]
  assert len(epoch_two) == 40 and sorted(epoch_one) == sorted(epoch_two)
  assert epoch_one != epoch_two


def test_state_round_trip_resumes_exactly(tmp_path):
  # One record's image is missing, so the counters have something to carry.
  records = procedural.generate("counting", "train", num_examples=40, cache_dir=str(tmp_path))
  os.remove(records[5]["image"])
  loader = data.make_dataset(config(str(tmp_path)))
  iterator = iter(loader)
  take(iterator, 12)  # past the first epoch: 40 records, one skipped
  state = json.loads(json.dumps(iterator.get_state()))
  expected = take(iterator, 4)
  expected_counters = dict(iterator.counters)
  assert expected_counters["skipped_missing_image"] >= 1

  resumed = iter(loader)
  resumed.set_state(state)
  assert_batches_equal(expected, take(resumed, 4))
  assert resumed.counters == expected_counters


def test_hosts_read_disjoint_shards_covering_the_data(cache_dir):
  everything = [qid for batch in data.make_eval_examples(config(cache_dir, split="test", num_examples=23))
                for qid, valid in zip(batch["question_id"], batch["valid"]) if valid]
  assert len(everything) == 23
  shards = []
  for shard_index in range(3):
    loader = data.make_eval_examples(config(cache_dir, split="test", num_examples=23),
                                     shard_index=shard_index, shard_count=3)
    shards.append([qid for batch in loader for qid, valid in zip(batch["question_id"], batch["valid"])
                   if valid])
    assert loader.num_records == len(shards[-1])
  assert sorted(sum(shards, [])) == sorted(everything)
  assert not set(shards[0]) & set(shards[1]) and not set(shards[1]) & set(shards[2])
  with pytest.raises(ValueError, match="shard_index"):
    data.make_dataset(config(cache_dir), shard_index=3, shard_count=3)


def test_eval_examples_are_left_padded_prompts_with_answers(cache_dir):
  eval_config = config(cache_dir, split="test", num_examples=10, task="ocr")
  loader = data.make_eval_examples(eval_config)
  records = procedural.generate("ocr", "test", num_examples=10, cache_dir=cache_dir)
  batches = list(loader)
  assert [b["valid"].tolist() for b in batches] == [[True] * 4, [True] * 4, [True, True, False, False]]
  assert sum((b["question_id"][:int(b["valid"].sum())] for b in batches), []) == [r["id"] for r in records]
  assert sum((b["answer"][:int(b["valid"].sum())] for b in batches), []) == [r["answer"] for r in records]
  for batch in batches:
    assert "labels" not in batch
    for row in range(4):
      ids, mask = batch["input_ids"][row], batch["attention_mask"][row]
      real = mask.sum()
      assert (mask[-real:] == 1).all() and (mask[:-real] == 0).all()
      prompt = loader.tokenizer.decode(ids[-real:][ids[-real:] >= 0])
      assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
      assert "what does the text say?" in prompt
      question = batch["question_ids"][row][batch["question_mask"][row] == 1]
      assert loader.tokenizer.decode(question) == "what does the text say?"


def test_mixture_interleaves_tasks_by_weight_repeating_the_smaller(cache_dir):
  mixture = config(cache_dir, source="mixture", task=None, mixture=("counting", "ocr"),
                   split="test", num_examples=5)
  records = sources.load_records(data_config.resolve(mixture))
  counting = procedural.generate("counting", "test", num_examples=5, cache_dir=cache_dir)
  ocr = procedural.generate("ocr", "test", num_examples=5, cache_dir=cache_dir)
  assert [r["id"] for r in records] == [r["id"] for pair in zip(counting, ocr) for r in pair]
  easy = sources.load_records(data_config.resolve(config(
      cache_dir, source="mixture", mixture=("easy_vqa", "ocr"), split="test", num_examples=None)))
  assert len(easy) == 2 * 9673
  assert [r["id"] for r in easy[1:2 * 500:2]] == [r["id"] for r in procedural.generate(
      "ocr", "test", cache_dir=cache_dir)]
  assert easy[2 * 500 + 1]["id"] == easy[1]["id"]  # ocr's 500 test records repeat
  weighted = sources.load_records(data_config.resolve(
      config(cache_dir, source="mixture", mixture=("counting", "ocr"), mixture_weights=(1, 2),
             split="test", num_examples=5)))
  c, o = [r["id"] for r in counting], [r["id"] for r in ocr]
  assert [r["id"] for r in weighted] == [c[0], o[0], o[1], c[1], o[2], o[3], c[2], o[4], o[0],
                                         c[3], o[1], o[2], c[4], o[3], o[4]]
  with pytest.raises(ValueError, match="needs data.mixture"):
    data.make_dataset(config(cache_dir, source="mixture"))
  with pytest.raises(ValueError, match="one positive integer per task"):
    data.make_dataset(config(cache_dir, source="mixture", mixture=("counting", "ocr"),
                             mixture_weights=(1,)))


def test_config_errors(cache_dir):
  with pytest.raises(ValueError, match="unknown data config keys.*'batchsize'"):
    data.make_dataset(ml_collections.ConfigDict(dict(batchsize=4)))
  with pytest.raises(ValueError, match="real token id"):
    data.make_dataset(config(cache_dir, image_token_id=5))
  with pytest.raises(ValueError, match="needs data.task"):
    data.make_dataset(config(cache_dir, task=None))
  with pytest.raises(ValueError, match="largest bucket"):
    data.make_dataset(config(cache_dir, max_length=100))


def _eval_pass_missing_images(tmp_path, missing, **overrides):
  """An eval loader over 10 ocr records of which those at `missing` lost their image."""
  records = procedural.generate("ocr", "test", num_examples=10, cache_dir=str(tmp_path))
  for index in missing:
    os.remove(records[index]["image"])
  return data.make_eval_examples(config(str(tmp_path), task="ocr", split="test",
                                        num_examples=10, **overrides))


def _valid_ids(batches):
  return [qid for batch in batches for qid, valid in zip(batch["question_id"], batch["valid"])
          if valid]


@pytest.mark.parametrize("missing", [(7, 8, 9), (8, 9), (0, 9)])
def test_skips_after_the_last_example_are_counted(tmp_path, missing):
  # (8, 9): the 8 examples fill two batches, so the counts arrive alone after them.
  iterator = iter(_eval_pass_missing_images(tmp_path, missing))
  assert len(_valid_ids(iterator)) == 10 - len(missing)
  assert iterator.counters["skipped_missing_image"] == len(missing)


def test_a_pass_of_skips_only_yields_nothing_but_counts_them(tmp_path):
  iterator = iter(_eval_pass_missing_images(tmp_path, range(10)))
  assert list(iterator) == []
  assert iterator.counters["skipped_missing_image"] == 10


def test_trailing_skip_counts_survive_a_state_round_trip(tmp_path):
  loader = _eval_pass_missing_images(tmp_path, (5, 8, 9))
  iterator = iter(loader)
  take(iterator, 1)
  state = json.loads(json.dumps(iterator.get_state()))
  expected = list(iterator)
  resumed = iter(loader)
  resumed.set_state(state)
  assert_batches_equal(expected, list(resumed))
  assert resumed.counters == iterator.counters
  assert resumed.counters["skipped_missing_image"] == 3


def test_trailing_skips_are_counted_with_worker_processes(tmp_path):
  iterator = iter(_eval_pass_missing_images(tmp_path, (3, 9), worker_count=2))
  try:
    assert len(_valid_ids(iterator)) == 8
    assert iterator.counters["skipped_missing_image"] == 2
  finally:
    iterator.close()
