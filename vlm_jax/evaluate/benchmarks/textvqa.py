"""TextVQA validation.

LLaVA's question file gives the image id as `question_id` (several questions
share one), and its scorer finds the annotation by (image id, lowercased
question). The reader does the same match once and renames each question to
the annotation's own unique `question_id`, keeping the image id as `image_id`.
"""
import collections

from vlm_jax.evaluate import prompts
from vlm_jax.evaluate.benchmarks import files
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS

OCR_LINE_PREFIX = "Reference OCR token:"


def question_of(prompt):
  """The question line of a TextVQA prompt (the line that is not the OCR tokens)."""
  lines = prompts.strip_instructions(prompt).split("\n")
  return next(line for line in lines if not line.startswith(OCR_LINE_PREFIX))


def read_textvqa(questions_file, image_dir, annotations_file, prompt_style="short_answer"):
  """annotations_file: `{"data": [{question_id, image_id, question, answers}]}`
  (TextVQA_0.5.1_val.json)."""
  examples = files.load_questions(questions_file, image_dir, prompt_style)
  entries = collections.defaultdict(collections.deque)
  for entry in files.read_json(annotations_file)["data"]:
    entries[entry["image_id"], entry["question"].lower()].append(entry)
  annotations = {}
  for example in examples:
    key = (example["question_id"], question_of(example["prompt"]).lower())
    if not entries[key]:
      raise ValueError(f"no annotation in {annotations_file} for image "
                       f"{key[0]!r} and question {key[1]!r}")
    # Repeated (image, question) pairs take the annotation entries in order.
    entry = entries[key].popleft()
    example["image_id"] = example["question_id"]
    example["question_id"] = entry["question_id"]
    annotations[entry["question_id"]] = entry["answers"]
  examples, missing = files.drop_missing_images(examples)
  return BenchmarkData(examples, annotations, missing)


BENCHMARKS.register("textvqa")(Benchmark(
    name="textvqa", reader=read_textvqa, scorer="vqa", prompt_style="short_answer",
    max_new_tokens=128,
    layout={"questions_file": "llava_textvqa_val_v051_ocr.jsonl",
            "image_dir": "train_images",
            "annotations_file": "TextVQA_0.5.1_val.json"}))
