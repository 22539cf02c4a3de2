"""Procedurally generated visual tasks, seeded, with disjoint train/test splits.

- counting: coloured shapes on white; "how many shapes are there?" or
  "how many circles are there?".
- spatial: a 3×3 grid of coloured cells; "what colour is the cell in row r,
  column c?".
- lookup: one large coloured shape; the question lists a number for each of 3-4
  colours, "red 3 blue 8 green 1: the shape?", answered by the number of
  the shape's colour.
- facts: one large coloured shape; "fact 7 of the shape?", answered by the digit a
  fixed table gives that (colour, fact): knowledge the language model must learn,
  the image telling only the colour (the family that needs a larger LLM, not more
  visual tokens).
- ocr: a row of 6 digits, one per patch-sized cell; "what does the text say?",
  answered with the digits space-separated (the family that needs many visual
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
from PIL import Image, ImageDraw

from vlm_jax.data.records import qa_record
from vlm_jax.registry import Registry

TASKS = Registry("procedural task")
SPLITS = ("train", "test")
DEFAULT_NUM_EXAMPLES = {"train": 5000, "test": 500}
_TEST_SHARE = 10  # one content key in ten goes to the test split
_VERSION = 4  # bump when rendering or sampling changes, to leave old caches alone

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


def _one_large_shape(rng):
  """A scene of one shape, half to four fifths of the image wide, anywhere in it."""
  side = float(rng.uniform(0.5, 0.8))
  x0, y0 = (float(v) for v in rng.uniform(0.05, 0.95 - side, size=2))
  return {"kind": SHAPES[int(rng.integers(len(SHAPES)))], "colour": _colour_names(rng, 1)[0],
          "box": [round(x0, 3), round(y0, 3), round(x0 + side, 3), round(y0 + side, 3)]}


class _OneLargeShape:
  """A task whose scene is one large shape (and what its question adds to the scene)."""

  render_size = 64

  def key(self, scene):
    return json.dumps(scene, sort_keys=True)

  def render(self, scene, size):
    image = Image.new("RGB", (size, size), "white")
    _draw_shape(ImageDraw.Draw(image), scene["kind"], [v * size for v in scene["box"]],
                COLOURS[scene["colour"]])
    return image


class Lookup(_OneLargeShape):
  """A large shape in one colour; answer the number the question's table gives that colour."""

  min_entries, max_entries = 3, 4

  def sample(self, rng):
    entries = int(rng.integers(self.min_entries, self.max_entries + 1))
    scene = _one_large_shape(rng)
    others = [str(c) for c in rng.permutation([c for c in COLOURS if c != scene["colour"]])]
    table = others[:entries - 1]
    table.insert(int(rng.integers(entries)), scene["colour"])
    numbers = [int(n) for n in rng.integers(10, size=entries)]
    scene["table"] = [[c, n] for c, n in zip(table, numbers)]
    listed = " ".join(f"{c} {n}" for c, n in zip(table, numbers))
    return scene, f"{listed}: the shape?", str(numbers[table.index(scene["colour"])])


class Facts(_OneLargeShape):
  """A large shape; "fact k of the shape?" is answered by the digit a fixed table gives
  (colour, k): knowledge the language model learns in training, the image telling only
  the colour (coarse, kept by any pooling; the kind varies the picture, not the answer).
  """

  num_facts = 16

  def __init__(self):
    # The task's world: the same table whatever the sampling seed.
    self.table = np.random.default_rng(zlib.crc32(b"facts")).integers(
        10, size=(len(COLOURS), self.num_facts))

  def sample(self, rng):
    scene = _one_large_shape(rng)
    scene["fact"] = int(rng.integers(self.num_facts))
    return scene, f"fact {scene['fact'] + 1} of the shape?", str(self.answer(scene))

  def answer(self, scene):
    return int(self.table[list(COLOURS).index(scene["colour"]), scene["fact"]])


# 5x7 pixel glyphs of the digits, drawn one per patch-sized cell.
_GLYPHS = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
}


class Ocr:
  """A row of 6 digits across the middle of the image, one per cell of an 8x8 grid (the
  tiny tower's patches), answered space-separated (one token per digit).

  Every digit must survive the compression: the row spans 6 patches, 3 of the 4
  regions' tokens at V = 4 and one token at V = 1. Fixed pixel glyphs in fixed cells keep
  reading learnable by a tiny tower trained from scratch on a CPU in a few hundred steps.
  """

  render_size = 64
  alphabet = "0123456789"
  length = 6
  grid, row, first_column = 8, 3, 1

  def sample(self, rng):
    text = "".join(self.alphabet[i] for i in rng.integers(len(self.alphabet), size=self.length))
    return {"text": text}, "what does the text say?", " ".join(text)

  def key(self, scene):
    return scene["text"]

  def render(self, scene, size):
    """Drawn on a 64 px canvas (8 px cells: 1 px margins round a 5x7 glyph), resized."""
    canvas = np.full((64, 64), 255, np.uint8)
    top = 8 * self.row + 1
    for i, digit in enumerate(scene["text"]):
      left = 8 * (self.first_column + i) + 1
      glyph = np.array([[c == "#" for c in line] for line in _GLYPHS[digit]])
      canvas[top:top + 7, left:left + 5][glyph] = 0
    return Image.fromarray(canvas).convert("RGB").resize((size, size), Image.NEAREST)


TASKS.register("counting")(Counting())
TASKS.register("spatial")(Spatial())
TASKS.register("lookup")(Lookup())
TASKS.register("facts")(Facts())
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
