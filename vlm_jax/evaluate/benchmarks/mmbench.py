"""MMBench (English dev/test TSV; server-scored on OpenCompass, local when answers are given)."""
import base64
import binascii
import csv
import sys

from vlm_jax.evaluate import prompts
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS

OPTION_COLUMNS = ("A", "B", "C", "D")


def is_blank(value):
  """A TSV cell that holds no value; LLaVA's reader also treats 'nan' and 'none' so."""
  return value is None or value.strip().lower() in ("", "nan", "none")


def read_tsv_rows(tsv_file):
  """The TSV's rows as dicts of strings (the base64 image cells are large)."""
  csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
  with open(tsv_file, encoding="utf-8", newline="") as f:
    return list(csv.DictReader(f, delimiter="\t"))


def row_options(row):
  """The row's option texts: columns A, B, ... up to the first blank one."""
  options = []
  for column in OPTION_COLUMNS:
    if is_blank(row.get(column)):
      break
    options.append(row[column])
  return options


def _image_bytes(row, images_by_index, tsv_file):
  image = row["image"]
  # Some releases store an image once and refer to it from other rows by index.
  if image.isdigit() and len(image) < 64:
    if image not in images_by_index:
      raise ValueError(f"{tsv_file}: row {row['index']} refers to missing image row {image}")
    image = images_by_index[image]
  try:
    return base64.b64decode(image, validate=True)
  except binascii.Error as e:
    raise ValueError(f"{tsv_file}: row {row['index']} has a bad base64 image") from e


def read_mmbench(tsv_file, prompt_style="multiple_choice"):
  """tsv_file: columns index, question, hint, A-D, answer (dev only), category,
  l2-category, image (base64). Examples: question_id = index (rows >= 10^6
  are the rotated copies), image = encoded image bytes. A row with an empty
  image cell is reported in missing_images as `row <index>`."""
  rows = read_tsv_rows(tsv_file)
  images_by_index = {row["index"]: row["image"] for row in rows if len(row["image"]) >= 64}
  examples, missing = [], []
  annotations = {} if rows and "answer" in rows[0] else None
  for row in rows:
    index = int(row["index"])
    options = row_options(row)
    hint = None if is_blank(row.get("hint")) else row["hint"]
    if annotations is not None:
      annotations[index] = {
          "answer": row["answer"].strip(),
          "options": dict(zip(OPTION_COLUMNS, options)),
          "category": row.get("category"),
          "l2_category": row.get("l2-category"),
      }
    if not row["image"].strip():
      missing.append(f"row {index}")
      continue
    examples.append({
        "question_id": index,
        "image": _image_bytes(row, images_by_index, tsv_file),
        "prompt": prompts.build_prompt(
            prompt_style, prompts.multiple_choice_text(row["question"], options, hint)),
        "category": row.get("category"),
    })
  return BenchmarkData(examples, annotations, missing)


BENCHMARKS.register("mmbench")(Benchmark(
    name="mmbench", reader=read_mmbench, scorer="mmbench", prompt_style="multiple_choice",
    max_new_tokens=1024, layout={"tsv_file": "mmbench_dev_20230712.tsv"}))
