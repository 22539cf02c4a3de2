"""VizWiz-VQA (server-scored on EvalAI; scored locally when annotations are given)."""
import os

from vlm_jax.evaluate.benchmarks import files
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS


def read_vizwiz(questions_file, image_dir, annotations_file=None,
                prompt_style="short_answer_unanswerable"):
  """annotations_file: VizWiz's `[{image, answers: [{answer}]}]` (e.g. val.json), matched
  by image name; without it annotations is None."""
  examples = files.load_questions(questions_file, image_dir, prompt_style)
  annotations = None
  if annotations_file is not None:
    by_image = {a["image"]: [answer["answer"] for answer in a["answers"]]
                for a in files.read_json(annotations_file)}
    by_id = {e["question_id"]: by_image[os.path.basename(e["image"])]
             for e in examples if os.path.basename(e["image"]) in by_image}
    annotations = files.select_annotations(by_id, examples, annotations_file)
  examples, missing = files.drop_missing_images(examples)
  return BenchmarkData(examples, annotations, missing)


BENCHMARKS.register("vizwiz")(Benchmark(
    name="vizwiz", reader=read_vizwiz, scorer="vqa",
    prompt_style="short_answer_unanswerable", max_new_tokens=128,
    layout={"questions_file": "llava_test.jsonl", "image_dir": "test"}))
