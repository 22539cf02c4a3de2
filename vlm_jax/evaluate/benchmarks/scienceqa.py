"""ScienceQA test split; ScienceQA-IMG keeps the questions that have an image."""
import os

from vlm_jax.evaluate import prompts
from vlm_jax.evaluate.benchmarks import files
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS


def read_scienceqa(questions_file, image_dir, problems_file, pid_splits_file,
                   split="test", image_only=True, prompt_style="multiple_choice"):
  """questions_file: LLaVA's JSON list `[{id, image?, conversations: [{value}, ...]}]`
  (llava_test_CQM-A.json, whose first turn is the `Context: ...` question with
  its lettered options); problems_file / pid_splits_file: ScienceQA's own.

  Annotations cover every problem of the split (image problems only when
  image_only), as LLaVA's scorer does; a question of another split is an error.
  A text-only question's example has image None.
  """
  problems = files.read_json(problems_file)
  split_ids = files.read_json(pid_splits_file)[split]
  annotations = {
      pid: {"choices": problems[pid]["choices"], "answer": problems[pid]["answer"],
            "has_image": problems[pid]["image"] is not None}
      for pid in split_ids if problems[pid]["image"] is not None or not image_only}
  in_split = set(split_ids)
  examples = []
  for question in files.read_json(questions_file):
    pid = question["id"]
    if pid not in in_split:
      raise ValueError(f"{questions_file}: question {pid!r} is not in the {split!r} split")
    if image_only and "image" not in question:
      continue
    examples.append({
        "question_id": pid,
        "image": os.path.join(image_dir, question["image"]) if "image" in question else None,
        "prompt": prompts.build_prompt(prompt_style, question["conversations"][0]["value"]),
    })
  examples, missing = files.drop_missing_images(examples)
  return BenchmarkData(examples, annotations, missing)


BENCHMARKS.register("scienceqa_img")(Benchmark(
    name="scienceqa_img", reader=read_scienceqa, scorer="scienceqa",
    prompt_style="multiple_choice", max_new_tokens=1024,
    layout={"questions_file": "llava_test_CQM-A.json", "image_dir": "images/test",
            "problems_file": "problems.json", "pid_splits_file": "pid_splits.json"}))
