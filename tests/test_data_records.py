"""LLaVA JSON records: reading, malformed files, bad records skipped and counted."""
import json
import logging

import ml_collections
import numpy as np
import pytest
from PIL import Image

from vlm_jax import data
from vlm_jax.data import records, templates, tokenizer as tokenizer_lib
from vlm_jax.data.examples import IGNORE_INDEX, ExampleBuilder, Skip


def qa(question, answer):
  return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


@pytest.fixture
def bad_input(tmp_path):
  """A JSON file with two good records and one of each kind of bad record."""
  image_dir = tmp_path / "images"
  image_dir.mkdir()
  Image.new("RGB", (10, 6), (200, 10, 10)).save(image_dir / "red.png")
  Image.new("RGB", (6, 10), (10, 10, 200)).save(image_dir / "blue.png")
  (image_dir / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
  items = [
      {"id": "good-red", "image": "red.png", "conversations": qa("<image>\nWhat colour?", "red")},
      {"id": "no-file", "image": "missing.png", "conversations": qa("<image>\nWhat colour?", "green")},
      {"id": "corrupt", "image": "corrupt.jpg", "conversations": qa("<image>\nWhat colour?", "grey")},
      {"id": "no-answer", "image": "red.png", "conversations": qa("<image>\nWhat colour?", "  ")},
      {"id": "no-token", "image": "blue.png", "conversations": qa("What colour?", "blue")},
      {"id": "good-blue", "image": "blue.png",
       "conversations": qa("Which colour is this?\n<image>", "blue") + qa("Sure?", "yes")},
  ]
  json_path = tmp_path / "bad.json"
  json_path.write_text(json.dumps(items, indent=1))
  return ml_collections.ConfigDict(dict(
      source="llava_json", json_path=str(json_path), image_dir=str(image_dir), image_size=8,
      max_length=64, bucket_lengths=(32, 64), batch_size=1, num_epochs=1, shuffle=False,
      read_threads=2))


def test_read_llava_json_joins_image_dir_and_maps_roles(tmp_path):
  path = tmp_path / "data.json"
  path.write_text(json.dumps([
      {"id": 7, "image": "a/b.png", "conversations": [
          {"from": "user", "value": "<image>\nhi"}, {"from": "assistant", "value": "yo"}]},
      {"conversations": [{"from": "human", "value": "text only"}]},
  ]))
  first, second = records.read_llava_json(str(path), image_dir="/imgs")
  assert first == {"id": "7", "image": "/imgs/a/b.png", "source": str(path), "conversations": [
      {"from": "human", "value": "<image>\nhi"}, {"from": "gpt", "value": "yo"}]}
  assert second["id"] == "1" and second["image"] is None


def test_malformed_json_names_file_and_position(tmp_path):
  path = tmp_path / "broken.json"
  path.write_text('[\n  {"id": "a",\n    "image": "x.png",,\n  }\n]')
  with pytest.raises(records.DataError) as error:
    records.read_llava_json(str(path))
  # The second comma of line 3 ('    "image": "x.png",,') is character 22.
  assert str(path) in str(error.value) and "line 3, column 22" in str(error.value)


def test_a_json_value_that_is_not_a_list_names_the_file(tmp_path):
  path = tmp_path / "odd.json"
  path.write_text(json.dumps({"id": "x"}))
  with pytest.raises(records.DataError, match="expected a JSON list") as error:
    records.read_llava_json(str(path))
  assert str(path) in str(error.value)


@pytest.mark.parametrize("item,message", [
    ({"id": "x", "conversations": "hi"}, "'conversations' must be a non-empty list"),
    ({"id": "x", "conversations": []}, "'conversations' must be a non-empty list"),
    ({"id": "x"}, "'conversations' must be a non-empty list"),
    ({"id": "x", "conversations": [{"from": "robot", "value": "hi"}]}, "turn 0 needs 'from'"),
    ({"id": "x", "conversations": [{"from": "gpt", "value": "hi"}]}, "turn 0 is from 'gpt'"),
    ({"id": "x", "image": 3, "conversations": qa("<image>\nhi", "yo")}, "'image' must be a file"),
    (["x"], "expected an object, got list"),
])
def test_a_malformed_record_becomes_a_marker_naming_its_position(tmp_path, item, message):
  path = tmp_path / "odd.json"
  good = {"id": "ok", "conversations": qa("hi", "yo")}
  path.write_text(json.dumps([good, item]))
  first, marker = records.read_llava_json(str(path))
  assert "malformed" not in first
  assert marker.keys() == {"id", "source", "malformed"}
  assert marker["id"] == ("x" if isinstance(item, dict) else "1")
  assert marker["source"] == str(path)
  assert marker["malformed"].startswith("record 1: ") and message in marker["malformed"]


def test_bad_records_are_skipped_named_and_counted(bad_input, caplog):
  loader = data.make_dataset(bad_input)
  iterator = iter(loader)
  with caplog.at_level(logging.WARNING):
    batches = list(iterator)
  answers = [loader.tokenizer.decode(b["labels"][0][b["labels"][0] != IGNORE_INDEX]) for b in batches]
  assert answers == ["red<|im_end|>", "blue<|im_end|>yes<|im_end|>"]
  assert iterator.counters == {"skipped_malformed": 0, "skipped_missing_image": 1,
                               "skipped_bad_image": 1,
                               "skipped_no_image_token": 1, "skipped_no_answer": 1, "truncated": 0}
  warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
  for record_id, why in [("no-file", "missing.png"), ("corrupt", "corrupt.jpg"),
                         ("no-answer", "no assistant answer"), ("no-token", "<image>")]:
    assert f"'{record_id}'" in warnings and why in warnings
  assert warnings.count(bad_input.json_path) == 4


def test_strict_mode_makes_a_bad_record_fatal(bad_input):
  bad_input.strict = True
  with pytest.raises(data.DataError, match="'no-file'.*missing.png"):
    list(data.make_dataset(bad_input))


def test_truncation_as_llava_cuts_at_max_length():
  tokenizer = tokenizer_lib.load_tokenizer("builtin")
  record = {"id": "long", "source": "test", "image": np.zeros((4, 4, 3), np.uint8),
            "conversations": qa("<image>\nSay it.", "one two three four five six")}

  def build(max_length):
    return ExampleBuilder(tokenizer=tokenizer, template=templates.TEMPLATES.get("chatml"),
                          image_kind="siglip", image_size=4, aspect="square",
                          max_length=max_length)(record)

  full = build(512)
  length = len(full["input_ids"])
  cut = build(length - 3)
  assert not full["truncated"] and cut["truncated"]
  np.testing.assert_array_equal(cut["input_ids"], full["input_ids"][:length - 3])
  np.testing.assert_array_equal(cut["labels"], full["labels"][:length - 3])
  prompt_length = int(np.argmax(full["labels"] != IGNORE_INDEX))
  skipped = build(prompt_length)
  assert isinstance(skipped, Skip) and skipped.reason == "skipped_no_answer"
  assert "max_length" in skipped.detail


def test_truncated_examples_are_counted(bad_input):
  bad_input.max_length = 40  # the two-round record is longer, its first answer survives
  iterator = iter(data.make_dataset(bad_input))
  batches = list(iterator)
  assert len(batches) == 2 and iterator.counters["truncated"] == 1
  assert max(b["attention_mask"].sum() for b in batches) == 40
