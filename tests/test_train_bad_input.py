"""Training on a data file with bad records goes on, and reports each skip by name."""
import json
import logging

from PIL import Image

import train_fixtures
from vlm_jax import train


def _conversation(answer):
  return [{"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": answer}]


def test_training_skips_missing_corrupt_and_unanswered_records(tmp_path, caplog):
  images = tmp_path / "images"
  images.mkdir()
  for name, colour in (("red.png", (200, 10, 10)), ("blue.png", (10, 10, 200))):
    Image.new("RGB", (32, 32), colour).save(images / name)
  (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
  records = [
      {"id": "good-red", "image": "red.png", "conversations": _conversation("red")},
      {"id": "lost", "image": "missing.png", "conversations": _conversation("green")},
      {"id": "broken", "image": "corrupt.jpg", "conversations": _conversation("grey")},
      {"id": "silent", "image": "blue.png", "conversations": _conversation(" ")},
      {"id": "good-blue", "image": "blue.png", "conversations": _conversation("blue")},
  ]
  (tmp_path / "data.json").write_text(json.dumps(records))
  config = train_fixtures.train_config()
  config.data.update(source="llava_json", json_path=str(tmp_path / "data.json"),
                     image_dir=str(images), shuffle=False, max_length=32,
                     bucket_lengths=(32,), read_threads=1)
  config.update(batch_size=2, total_steps=2, log_every=2)

  with caplog.at_level(logging.WARNING):
    history = train.train(config, tmp_path / "run").history

  assert [h["step"] for h in history] == [1, 2]
  last = history[-1]
  for counter in ("skipped_missing_image", "skipped_bad_image", "skipped_no_answer"):
    assert last[f"data/{counter}"] >= 1, counter
  warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
  for record_id, why in (("lost", "missing.png"), ("broken", "corrupt.jpg"),
                         ("silent", "no assistant answer")):
    assert f"'{record_id}'" in warnings and why in warnings
