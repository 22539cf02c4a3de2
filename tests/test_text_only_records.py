"""Text-only records train through the LLM alone, mixed into image batches; malformed
records are skipped, named and counted instead of stopping the run."""
import json
import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from PIL import Image

import train_fixtures
from vlm_jax import configs, data, models, train
from vlm_jax.data.examples import IGNORE_INDEX, ExampleBuilder, Skip
from vlm_jax.data.templates import TEMPLATES
from vlm_jax.models import vlm
from vlm_jax.models.llm import DecoderLM
from vlm_jax.train import loss

PLACEHOLDER = -200
END = "<|im_end|>"


def qa(question, answer):
  return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


COLOUR = qa("<image>\nWhat colour?", "red")
MALFORMED = [  # (id in warnings, what the warning says, the JSON value)
    ("no-conversations", "'conversations' must be", {"id": "no-conversations", "image": "red.png"}),
    ("empty", "'conversations' must be", {"id": "empty", "conversations": []}),
    ("not-a-list", "'conversations' must be", {"id": "not-a-list", "conversations": "hello"}),
    ("no-from", "turn 0 needs 'from'", {"id": "no-from", "conversations": [{"value": "hi"}]}),
    ("number-value", "turn 1 needs", {"id": "number-value", "conversations": [
        {"from": "human", "value": "hi"}, {"from": "gpt", "value": 3}]}),
    ("7", "expected an object, got str", "not a record"),
    ("two-humans", "turn 1 is from 'human'", {"id": "two-humans", "conversations": [
        {"from": "human", "value": "hi"}, {"from": "human", "value": "hello?"}]}),
    ("image-list", "'image' must be a file name", {"id": "image-list", "image": ["red.png"],
                                                   "conversations": COLOUR}),
]
TEXT_ONLY = {"chat-1": qa("Name a prime.", "Seven") + qa("Another?", "Eleven"),
             "chat-2": qa("Say hi.", "Hi there")}


@pytest.fixture
def mixed_json(tmp_path):
  """Image records, text-only records, one of each malformed kind, and a stray <image>."""
  image_dir = tmp_path / "images"
  image_dir.mkdir()
  Image.new("RGB", (32, 32), (200, 10, 10)).save(image_dir / "red.png")
  Image.new("RGB", (32, 32), (10, 10, 200)).save(image_dir / "blue.png")
  items = [m for _, _, m in MALFORMED[:5]] + [
      {"id": "img-red", "image": "red.png", "conversations": COLOUR},
      {"id": "chat-1", "conversations": TEXT_ONLY["chat-1"]},
      *[m for _, _, m in MALFORMED[5:]],
      {"id": "img-blue", "image": "blue.png", "conversations": qa("What colour?\n<image>", "blue")},
      {"id": "stray-token", "conversations": qa("<image>\nWhat is this?", "a cat")},
      {"id": "chat-2", "image": None, "conversations": TEXT_ONLY["chat-2"]},
  ]
  assert items[7] == "not a record"  # its id is its index
  json_path = tmp_path / "mixed.json"
  json_path.write_text(json.dumps(items))
  return json_path, image_dir


def data_config(json_path, image_dir):
  return ml_collections.ConfigDict(dict(
      source="llava_json", json_path=str(json_path), image_dir=str(image_dir), image_size=8,
      max_length=64, bucket_lengths=(32, 64), batch_size=2, num_epochs=1, shuffle=False,
      read_threads=2))


def answer_tokens(tokenizer, conversations):
  return sum(len(tokenizer.encode(turn["value"] + END)) for turn in conversations[1::2])


def test_text_only_rows_mix_into_image_batches(mixed_json, caplog):
  loader = data.make_dataset(data_config(*mixed_json))
  iterator = iter(loader)
  with caplog.at_level(logging.WARNING):
    batches = list(iterator)
  tokenizer = loader.tokenizer
  assert len(batches) == 2
  text_rows = []
  for batch in batches:
    has_image = (batch["input_ids"] == PLACEHOLDER).sum(1)
    assert sorted(has_image.tolist()) == [0, 1]  # every batch mixes both kinds
    row = int(np.argmin(has_image))
    assert not batch["pixels"][row].any() and batch["pixels"][1 - row].any()
    text_rows.append((batch["input_ids"][row], batch["labels"][row]))
  answered = [labels[labels != IGNORE_INDEX] for _, labels in text_rows]
  assert [len(a) for a in answered] == [answer_tokens(tokenizer, t) for t in TEXT_ONLY.values()]
  assert tokenizer.decode(answered[0]) == f"Seven{END}Eleven{END}"
  ids, labels = text_rows[1]
  unmasked = labels != IGNORE_INDEX
  np.testing.assert_array_equal(ids[unmasked], labels[unmasked])

  assert iterator.counters["skipped_malformed"] == len(MALFORMED)
  assert iterator.counters["skipped_missing_image"] == 1
  warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
  for record_id, why, _ in MALFORMED:
    assert f"skipping record '{record_id}' from {mixed_json[0]}:" in warnings, record_id
    assert why in warnings, why
  assert "'stray-token'" in warnings and "names no image" in warnings


def test_strict_mode_raises_on_the_first_malformed_record(mixed_json):
  config = data_config(*mixed_json)
  config.strict = True
  with pytest.raises(data.DataError, match="'no-conversations'.*record 0: 'conversations'"):
    list(data.make_dataset(config))


@pytest.mark.parametrize("template,for_generation", [("plain", False), ("chatml", True)])
def test_a_text_only_record_is_skipped_where_a_prompt_needs_its_image(template, for_generation):
  builder = ExampleBuilder(tokenizer=data.load_tokenizer("builtin"),
                           template=TEMPLATES.get(template), image_kind="siglip", image_size=8,
                           aspect="square", max_length=64, for_generation=for_generation)
  skipped = builder({"id": "chat", "source": "test", "conversations": TEXT_ONLY["chat-2"]})
  assert isinstance(skipped, Skip) and skipped.reason == "skipped_missing_image"


def test_splice_puts_a_text_only_rows_visual_tokens_after_its_text():
  text = jnp.array([[1, 2, 3, 4], [5, 6, 7, 8]])
  images = jnp.array([[10, 11, 12], [13, 14, 15]])
  input_ids = jnp.array([[1, PLACEHOLDER, 3, 4], [5, 6, 7, 8]])
  np.testing.assert_array_equal(vlm.splice(text, images, input_ids, PLACEHOLDER),
                                [[1, 10, 11, 12, 3, 4], [5, 6, 7, 8, 13, 14]])
  labels = vlm.expand_labels(text, input_ids, 3, PLACEHOLDER)
  np.testing.assert_array_equal(labels[1], [5, 6, 7, 8, IGNORE_INDEX, IGNORE_INDEX])


@pytest.fixture(scope="module")
def tiny_vlm():
  """Config, params, and the model and its loss jitted once for every text length."""
  config = configs.preset("vlm:llm=tiny_llm:size=xs,budget=4")
  params = jax.jit(lambda key: nn.unbox(models.init(config, key)))(jax.random.PRNGKey(0))
  model = models.build(config)
  apply = jax.jit(lambda p, inputs: model.apply({"params": p}, **inputs))
  vlm_loss = jax.jit(lambda p, batch: loss.vlm_loss(model, p, batch, PLACEHOLDER,
                                                    jax.random.PRNGKey(0)))
  llm = jax.jit(lambda p, ids: DecoderLM(config.llm).apply({"params": p["llm"]}, ids))
  return config, params, apply, vlm_loss, llm


def mixed_batch(config, text_length):
  """Row 0: a 10-token prompt with an image; row 1: `text_length` text tokens, right-padded."""
  rng = np.random.default_rng(1)
  input_ids = rng.integers(3, 1000, (2, 10)).astype(np.int32)
  input_ids[0, 2] = PLACEHOLDER
  input_ids[1, text_length:] = 0
  attention_mask = np.ones((2, 10), np.int32)
  attention_mask[1, text_length:] = 0
  size = config.vision.image_size
  pixels = np.zeros((2, size, size, 3), np.float32)
  pixels[0] = rng.normal(size=(size, size, 3))
  labels = np.where(attention_mask > 0, input_ids, IGNORE_INDEX)
  labels[:, :4] = IGNORE_INDEX
  return dict(input_ids=input_ids, attention_mask=attention_mask, pixels=pixels, labels=labels,
              question_ids=rng.integers(3, 1000, (2, 4)).astype(np.int32),
              question_mask=np.array([[1, 1, 1, 1], [1, 1, 0, 0]], np.int32))


def rows(batch, index):
  return {k: v[index] for k, v in batch.items()}


@pytest.mark.parametrize("text_length", [7, 10])
def test_a_text_only_row_is_the_llm_on_its_text_alone(tiny_vlm, text_length):
  config, params, apply, vlm_loss, llm = tiny_vlm
  batch = mixed_batch(config, text_length)
  inputs = {k: v for k, v in batch.items() if k != "labels"}
  logits = apply(params, inputs)
  assert logits.shape[1] == 10 - 1 + config.compressor.budget

  text = rows(batch, slice(1, 2, None))
  llm_logits = llm(params, text["input_ids"][:, :text_length])
  np.testing.assert_allclose(logits[1, :text_length], llm_logits[0], atol=1e-5, rtol=0)

  alone = apply(params, {k: v[:1] for k, v in inputs.items()})
  np.testing.assert_allclose(logits[0], alone[0], atol=1e-5, rtol=0)

  total, count = vlm_loss(params, text)
  llm_total, llm_count = loss.token_cross_entropy(llm_logits, text["labels"][:, :text_length])
  assert int(count) == int(llm_count) == text_length - 4
  np.testing.assert_allclose(total, llm_total, rtol=1e-6)


def test_training_on_a_mixed_file_counts_the_text_only_answers(mixed_json, tmp_path):
  json_path, image_dir = mixed_json
  config = train_fixtures.train_config()
  config.data.update(source="llava_json", json_path=str(json_path), image_dir=str(image_dir),
                     shuffle=False, max_length=64, bucket_lengths=(64,), read_threads=1)
  config.update(batch_size=4, total_steps=2, log_every=1)
  history = train.train(config, tmp_path / "run").history

  assert [h["step"] for h in history] == [1, 2]
  assert all(np.isfinite(h["loss"]) for h in history)
  tokenizer = data.load_tokenizer("builtin")
  image_answers = len(tokenizer.encode("red" + END)) + len(tokenizer.encode("blue" + END))
  text_answers = sum(answer_tokens(tokenizer, t) for t in TEXT_ONLY.values())
  assert history[0]["answer_tokens"] == image_answers + text_answers  # the 4 good records
  assert history[0]["data/truncated"] == 0
  assert history[0]["data/skipped_malformed"] == len(MALFORMED)
