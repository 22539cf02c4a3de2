"""Procedurally generated visual tasks, seeded, with disjoint train/test splits.

- counting: coloured shapes on white; "how many shapes are there?" or
  "how many circles are there?".
- spatial: a 3×3 grid of coloured cells; "what colour is the cell in row r,
  column c?".
- lookup: one large coloured shape; the question lists a number for each of 3-4
  colours, "red 3 blue 8 green 1: the shape?", answered by the number of
  the shape's colour (the image gives one coarse fact, found in any pooling of it;
  the language model does the rest: the reasoning contrast to ocr).
- ocr: a 3-4 digit number printed across the middle of the image with PIL's
  built-in font; "what does the text say?" (the task that needs many visual
  tokens: every digit must survive the compression).

A sample's split is decided by a hash of its content key (the scene for
counting and spatial, the text for ocr), so no test image (or test string)
ever occurs in training. Images are written once to a cache folder named by
(task, split, seed, count, size); a later call with the same arguments reads
the records back without rendering.
"""
import hashlib
import json
import os
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vlm_jax.data.records import qa_record
from vlm_jax.registry import Registry

TASKS = Registry("procedural task")
SPLITS = ("train", "test")
DEFAULT_NUM_EXAMPLES = {"train": 5000, "test": 500}
_TEST_SHARE = 10  # one content key in ten goes to the test split
_VERSION = 2  # bump when rendering or sampling changes, to leave old caches alone

COLOURS = {
    "red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220),
    "yellow": (235, 200, 30), "purple": (140, 60, 180), "orange": (245, 130, 20),
}
SHAPES = ("circle", "square", "triangle")


def _colour_names(rng, count):
  names = list(COLOURS)
  return [names[i] for i in rng.integers(len(names), size=count)]


class Counting:
  """1-6 non-overlapping shapes; count all of them or one kind."""

  render_size = 64
  max_shapes = 6

  def sample(self, rng):
    count = int(rng.integers(1, self.max_shapes + 1))
    shapes = []
    while len(shapes) < count:
      side = float(rng.uniform(0.12, 0.2))
      x0, y0 = (float(v) for v in rng.uniform(0.02, 0.98 - side, size=2))
      box = [round(x0, 3), round(y0, 3), round(x0 + side, 3), round(y0 + side, 3)]
      if all(_apart(box, other["box"]) for other in shapes):
        shapes.append({"kind": SHAPES[int(rng.integers(len(SHAPES)))], "box": box,
                       "colour": _colour_names(rng, 1)[0]})
    scene = {"shapes": shapes}
    if rng.random() < 0.5:
      return scene, "how many shapes are there?", str(count)
    kind = SHAPES[int(rng.integers(len(SHAPES)))]
    return scene, f"how many {kind}s are there?", str(sum(s["kind"] == kind for s in shapes))

  def key(self, scene):
    return json.dumps(scene, sort_keys=True)

  def render(self, scene, size):
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for shape in scene["shapes"]:
      _draw_shape(draw, shape["kind"], [v * size for v in shape["box"]], COLOURS[shape["colour"]])
    return image


def _draw_shape(draw, kind, box, colour):
  x0, y0, x1, y1 = box
  if kind == "circle":
    draw.ellipse((x0, y0, x1, y1), fill=colour)
  elif kind == "square":
    draw.rectangle((x0, y0, x1, y1), fill=colour)
  else:
    draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=colour)


def _apart(a, b, gap=0.02):
  return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


class Spatial:
  """A grid of coloured cells; name the colour at (row, column), 1-indexed."""

  render_size = 64
  grid = 3

  def sample(self, rng):
    cells = _colour_names(rng, self.grid * self.grid)
    scene = {"cells": [cells[r * self.grid:(r + 1) * self.grid] for r in range(self.grid)]}
    row, column = (int(v) for v in rng.integers(self.grid, size=2))
    return (scene, f"what colour is the cell in row {row + 1}, column {column + 1}?",
            scene["cells"][row][column])

  def key(self, scene):
    return json.dumps(scene, sort_keys=True)

  def render(self, scene, size):
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    edges = np.linspace(0, size, self.grid + 1).round().astype(int)
    for r, row in enumerate(scene["cells"]):
      for c, colour in enumerate(row):
        draw.rectangle((edges[c], edges[r], edges[c + 1] - 1, edges[r + 1] - 1),
                       fill=COLOURS[colour], outline="white")
    return image


class Lookup:
  """A large shape in one colour; answer the number the question's table gives that colour."""

  render_size = 64
  min_entries, max_entries = 3, 4

  def sample(self, rng):
    entries = int(rng.integers(self.min_entries, self.max_entries + 1))
    table = [str(c) for c in rng.permutation(list(COLOURS))[:entries]]
    numbers = [int(n) for n in rng.integers(10, size=entries)]
    colour = table[int(rng.integers(entries))]
    side = float(rng.uniform(0.5, 0.8))
    x0, y0 = (float(v) for v in rng.uniform(0.05, 0.95 - side, size=2))
    scene = {"kind": SHAPES[int(rng.integers(len(SHAPES)))], "colour": colour,
             "box": [round(x0, 3), round(y0, 3), round(x0 + side, 3), round(y0 + side, 3)],
             "table": [[c, n] for c, n in zip(table, numbers)]}
    listed = " ".join(f"{c} {n}" for c, n in zip(table, numbers))
    return scene, f"{listed}: the shape?", str(numbers[table.index(colour)])

  def key(self, scene):
    return json.dumps(scene, sort_keys=True)

  def render(self, scene, size):
    image = Image.new("RGB", (size, size), "white")
    _draw_shape(ImageDraw.Draw(image), scene["kind"], [v * size for v in scene["box"]],
                COLOURS[scene["colour"]])
    return image


class Ocr:
  """3-4 digits in a large font, centred: each digit spans a few patches of the image.

  A fixed layout keeps the task learnable by tiny models trained from scratch on a
  CPU (about 1,000 steps); with random placement they stay at chance that long.
  """

  render_size = 64
  alphabet = "0123456789"

  def sample(self, rng):
    length = int(rng.integers(3, 5))
    text = "".join(self.alphabet[i] for i in rng.integers(len(self.alphabet), size=length))
    return {"text": text}, "what does the text say?", text

  def key(self, scene):
    return scene["text"]

  def render(self, scene, size):
    font = ImageFont.load_default(size=self.font_size(size))
    image = Image.new("RGB", (size, size), "white")
    left, top, right, bottom = font.getbbox(scene["text"])
    x = (size - (right - left)) / 2 - left
    y = (size - (bottom - top)) / 2 - top
    ImageDraw.Draw(image).text((x, y), scene["text"], fill="black", font=font)
    return image

  @staticmethod
  def font_size(size):
    return max(8, 3 * size // 8)


TASKS.register("counting")(Counting())
TASKS.register("spatial")(Spatial())
TASKS.register("lookup")(Lookup())
TASKS.register("ocr")(Ocr())


def split_of(key):
  digest = hashlib.sha256(key.encode()).digest()
  return "test" if int.from_bytes(digest[:8], "little") % _TEST_SHARE == 0 else "train"


def sample_questions(task_name, split, *, seed=0, num_examples=None):
  """[(scene, question, answer)] for the split: deterministic, distinct scenes."""
  if split not in SPLITS:
    raise ValueError(f"unknown split {split!r} for procedural tasks; known: {', '.join(SPLITS)}")
  task = TASKS.get(task_name)
  num_examples = DEFAULT_NUM_EXAMPLES[split] if num_examples is None else num_examples
  rng = np.random.default_rng([seed, zlib.crc32(task_name.encode())])
  samples, seen = [], set()
  for _ in range(100 * num_examples + 1000):
    if len(samples) == num_examples:
      return samples
    scene, question, answer = task.sample(rng)
    key = task.key(scene)
    if split_of(key) == split and key not in seen:
      seen.add(key)
      samples.append((scene, question, answer))
  raise ValueError(f"task {task_name!r} produced only {len(samples)} distinct {split} samples "
                   f"of the {num_examples} asked for")


def default_cache_dir():
  return os.environ.get("VLM_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "vlm_jax"))


def generate(task_name, split, *, seed=0, num_examples=None, render_size=None, cache_dir=None):
  """Records of a procedural task, images rendered into the cache once."""
  task = TASKS.get(task_name)
  num_examples = DEFAULT_NUM_EXAMPLES.get(split) if num_examples is None else num_examples
  size = render_size or task.render_size
  folder = os.path.join(cache_dir or default_cache_dir(), "procedural",
                        f"{task_name}-{split}-seed{seed}-n{num_examples}-px{size}-v{_VERSION}")
  manifest = os.path.join(folder, "records.json")
  source = f"procedural:{task_name}/{split}"
  if not os.path.exists(manifest):
    os.makedirs(folder, exist_ok=True)
    entries = []
    samples = sample_questions(task_name, split, seed=seed, num_examples=num_examples)
    for index, (scene, question, answer) in enumerate(samples):
      file_name = f"{index:06d}.png"
      _write_atomically(os.path.join(folder, file_name),
                        lambda f, scene=scene: task.render(scene, size).save(f, format="PNG"))
      entries.append({"index": index, "image": file_name, "question": question, "answer": answer})
    _write_atomically(manifest, lambda f: f.write(json.dumps(entries).encode()))
  with open(manifest, encoding="utf-8") as f:
    entries = json.load(f)
  return [qa_record(f"{task_name}-{split}-{e['index']:06d}", os.path.join(folder, e["image"]),
                    e["question"], e["answer"], source) for e in entries]


def _write_atomically(path, write):
  """Writes via a private temporary file, so concurrent writers never see half a file."""
  temporary = f"{path}.tmp{os.getpid()}"
  with open(temporary, "wb") as f:
    write(f)
  os.replace(temporary, path)
