"""Built-in data: the procedural tasks and easy-vqa as LLaVA records."""
import os

import easy_vqa
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from vlm_jax.data import procedural
from vlm_jax.data.easy_vqa_source import easy_vqa_records

TASKS = ("counting", "spatial", "lookup", "ocr")


@pytest.mark.parametrize("task", TASKS)
def test_samples_are_deterministic_per_seed(task):
  first = procedural.sample_questions(task, "train", seed=3, num_examples=50)
  assert first == procedural.sample_questions(task, "train", seed=3, num_examples=50)
  assert first != procedural.sample_questions(task, "train", seed=4, num_examples=50)


@pytest.mark.parametrize("task", TASKS)
def test_train_and_test_never_share_an_image(task):
  definition = procedural.TASKS.get(task)
  keys = {split: {definition.key(scene) for scene, _, _ in procedural.sample_questions(
      task, split, seed=0, num_examples=400)} for split in procedural.SPLITS}
  assert len(keys["train"]) == len(keys["test"]) == 400  # distinct within a split too
  assert not keys["train"] & keys["test"]


@pytest.mark.parametrize("task", TASKS)
def test_generate_writes_once_and_is_byte_identical(task, tmp_path, monkeypatch):
  records = procedural.generate(task, "test", seed=1, num_examples=6, cache_dir=str(tmp_path / "a"))
  again = procedural.generate(task, "test", seed=1, num_examples=6, cache_dir=str(tmp_path / "b"))
  for one, other in zip(records, again):
    assert {**one, "image": None} == {**other, "image": None}
    with open(one["image"], "rb") as f, open(other["image"], "rb") as g:
      assert f.read() == g.read()
  assert records[0]["conversations"][0]["value"].startswith("<image>\n")
  assert records[0]["conversations"][1]["value"] == records[0]["answer"]

  def no_rendering(*args):
    raise AssertionError("rendered again")
  monkeypatch.setattr(procedural.TASKS.get(task), "render", no_rendering)
  assert procedural.generate(task, "test", seed=1, num_examples=6,
                             cache_dir=str(tmp_path / "a")) == records


def test_spatial_answer_is_the_colour_drawn_in_that_cell():
  task = procedural.TASKS.get("spatial")
  for scene, question, answer in procedural.sample_questions("spatial", "test", num_examples=20):
    row, column = (int(part.split()[-1]) for part in question.rstrip("?").split(","))
    pixels = np.asarray(task.render(scene, 60))
    centre = pixels[(row - 1) * 20 + 10, (column - 1) * 20 + 10]
    assert tuple(centre) == procedural.COLOURS[answer], question


def test_counting_answer_is_the_number_of_drawn_shapes():
  task = procedural.TASKS.get("counting")
  samples = procedural.sample_questions("counting", "test", num_examples=40)
  totals = [(scene, answer) for scene, question, answer in samples if question == "how many shapes are there?"]
  assert totals
  for scene, answer in totals:
    ink = (np.asarray(task.render(scene, 96)) < 250).any(axis=-1)
    assert ndimage.label(ink)[1] == int(answer)


def test_lookup_answer_is_the_number_listed_for_the_drawn_colour():
  task = procedural.TASKS.get("lookup")
  for scene, question, answer in procedural.sample_questions("lookup", "test", num_examples=30):
    listed = question.removesuffix(": the shape?").split()
    table = dict(zip(listed[::2], listed[1::2]))
    assert 3 <= len(table) <= 4 and len(listed) == 2 * len(table)
    pixels = np.asarray(task.render(scene, 64)).reshape(-1, 3)
    drawn = {tuple(p) for p in pixels} - {(255, 255, 255)}
    colour, = [name for name in table if procedural.COLOURS[name] in drawn]
    assert answer == table[colour], question


def ink_box(image):
  """-> (top, bottom, left, right) of the dark pixels, bottom and right exclusive."""
  ink = np.asarray(image.convert("L")) < 128
  rows, columns = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
  return rows[0], rows[-1] + 1, columns[0], columns[-1] + 1


def ink_extent(image):
  top, bottom, left, right = ink_box(image)
  return bottom - top, right - left


def test_ocr_text_is_drawn_whole_and_centred():
  task = procedural.TASKS.get("ocr")
  font = ImageFont.load_default(size=task.font_size(96))
  for scene, _, answer in procedural.sample_questions("ocr", "train", num_examples=30):
    assert 3 <= len(answer) <= 4 and set(answer) <= set(task.alphabet)
    unclipped = Image.new("RGB", (300, 100), "white")
    ImageDraw.Draw(unclipped).text((50, 30), answer, fill="black", font=font)
    height, width = ink_extent(unclipped)
    drawn = task.render(scene, 96)
    drawn_height, drawn_width = ink_extent(drawn)
    assert abs(drawn_height - height) <= 1 and abs(drawn_width - width) <= 1, answer
    top, bottom, left, right = ink_box(drawn)
    assert abs((top + bottom) / 2 - 48) <= 2 and abs((left + right) / 2 - 48) <= 2, answer


@pytest.mark.parametrize("split,count", [("train", 38575), ("test", 9673)])
def test_easy_vqa_records(split, count):
  records = easy_vqa_records(split)
  assert len(records) == count
  questions, answers, image_ids = (easy_vqa.get_train_questions if split == "train"
                                   else easy_vqa.get_test_questions)()
  for index in (0, count // 2, count - 1):
    record = records[index]
    assert record["conversations"] == [
        {"from": "human", "value": f"<image>\n{questions[index]}"},
        {"from": "gpt", "value": answers[index]}]
    assert record["answer"] == answers[index]
    assert os.path.basename(record["image"]) == f"{image_ids[index]}.png"
    assert Image.open(record["image"]).size == (64, 64)
  assert {r["answer"] for r in records} <= set(easy_vqa.get_answers())
