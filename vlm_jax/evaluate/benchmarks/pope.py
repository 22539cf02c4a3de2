"""POPE (adversarial, popular, random splits of COCO val2014)."""
import collections
import os

from vlm_jax.evaluate.benchmarks import files
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS


def read_pope(questions_file, image_dir, labels_dir, prompt_style="short_answer"):
  """labels_dir holds `coco_pope_<split>.json`, one jsonl line with `label` per
  question of that split; the split is a question's `category`, and labels pair
  with the split's questions by position (as in LLaVA)."""
  examples = files.load_questions(questions_file, image_dir, prompt_style)
  by_split = collections.defaultdict(list)
  for example in examples:
    by_split[example["category"]].append(example)
  annotations = {}
  for split, split_examples in by_split.items():
    labels_file = os.path.join(labels_dir, f"coco_pope_{split}.json")
    labels = files.read_jsonl(labels_file)
    if len(labels) != len(split_examples):
      raise ValueError(f"{labels_file} has {len(labels)} labels for "
                       f"{len(split_examples)} {split!r} questions")
    for position, (example, label) in enumerate(zip(split_examples, labels)):
      if "image" in label and (os.path.basename(label["image"])
                               != os.path.basename(example["image"])):
        raise ValueError(f"{labels_file} line {position + 1} is about image "
                         f"{label['image']!r}, question {example['question_id']!r} "
                         f"about {example['image']!r}")
      annotations[example["question_id"]] = {"label": label["label"], "split": split}
  examples, missing = files.drop_missing_images(examples)
  return BenchmarkData(examples, annotations, missing)


BENCHMARKS.register("pope")(Benchmark(
    name="pope", reader=read_pope, scorer="pope", prompt_style="short_answer",
    max_new_tokens=128,
    layout={"questions_file": "llava_pope_test.jsonl", "image_dir": "val2014",
            "labels_dir": "coco"}))
