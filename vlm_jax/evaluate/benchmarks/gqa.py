"""GQA testdev-balanced."""
from vlm_jax.evaluate.benchmarks import files
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS


def read_gqa(questions_file, image_dir, annotations_file, prompt_style="short_answer"):
  """annotations_file: GQA's `{question_id: {"answer": ..., ...}}`
  (testdev_balanced_questions.json)."""
  examples = files.load_questions(questions_file, image_dir, prompt_style)
  by_id = {question_id: q["answer"] for question_id, q in files.read_json(annotations_file).items()}
  annotations = files.select_annotations(by_id, examples, annotations_file)
  examples, missing = files.drop_missing_images(examples)
  return BenchmarkData(examples, annotations, missing)


BENCHMARKS.register("gqa")(Benchmark(
    name="gqa", reader=read_gqa, scorer="gqa", prompt_style="short_answer",
    max_new_tokens=128,
    layout={"questions_file": "llava_gqa_testdev_balanced.jsonl",
            "image_dir": "data/images",
            "annotations_file": "data/testdev_balanced_questions.json"}))
