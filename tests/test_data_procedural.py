"""Built-in data: the procedural tasks and easy-vqa as LLaVA records."""
import os

import easy_vqa
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from vlm_jax.data import procedural
from vlm_jax.data.easy_vqa_source import easy_vqa_records

TASKS = ("counting", "spatial", "lookup", "facts", "ocr")


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


def _drawn_colour(image):
  pixels = {tuple(p) for p in np.asarray(image).reshape(-1, 3)}
  colour, = [name for name, rgb in procedural.COLOURS.items() if rgb in pixels]
  return colour


def test_facts_answer_is_one_digit_per_drawn_colour_and_fact_whatever_the_seed():
  task = procedural.TASKS.get("facts")
  answers = {}
  for seed in (0, 1):
    for scene, question, answer in procedural.sample_questions("facts", "train", seed=seed,
                                                               num_examples=300):
      fact = int(question.removeprefix("fact ").removesuffix(" of the shape?"))
      key = (_drawn_colour(task.render(scene, 64)), fact)
      answers.setdefault(key, set()).add(answer)
  assert all(len(digits) == 1 for digits in answers.values())
  by_fact = {}
  for (colour, fact), (digit,) in answers.items():
    by_fact.setdefault(fact, set()).add(digit)
  assert all(len(digits) > 1 for digits in by_fact.values())  # the colour decides, too


def test_ocr_digits_fill_their_own_cells_and_tell_every_digit_apart():
  task = procedural.TASKS.get("ocr")
  drawn = {}
  for scene, _, answer in procedural.sample_questions("ocr", "train", num_examples=40):
    digits = answer.split()
    assert "".join(digits) == scene["text"] and len(digits) == task.length
    ink = np.asarray(task.render(scene, 64).convert("L")) < 128
    cells = ink.reshape(8, 8, 8, 8).transpose(0, 2, 1, 3)  # [grid row, grid column, y, x]
    inked = cells.any(axis=(2, 3))
    columns = slice(task.first_column, task.first_column + task.length)
    assert inked.sum() == task.length and inked[task.row, columns].all()
    for digit, cell in zip(digits, cells[task.row, columns]):
      drawn.setdefault(digit, set()).add(cell.tobytes())
  assert all(len(cells) == 1 for cells in drawn.values())  # one way to draw each digit
  assert len(set().union(*drawn.values())) == len(drawn) == 10  # and ten different ones


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
