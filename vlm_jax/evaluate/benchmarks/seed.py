"""SEED-Bench (image questions, and video questions through one extracted frame)."""
from vlm_jax.evaluate.benchmarks import files
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS


def read_seed(questions_file, image_dir, annotations_file, prompt_style="multiple_choice"):
  """annotations_file: SEED-Bench.json, `{"questions": [{question_id, answer, data_type,
  question_type_id}], "question_type": {name: id}}`. Question ids become strings
  (LLaVA's question file has them as numbers, SEED-Bench.json as strings)."""
  examples = files.load_questions(questions_file, image_dir, prompt_style)
  for example in examples:
    example["question_id"] = str(example["question_id"])
  seed = files.read_json(annotations_file)
  type_names = {type_id: name for name, type_id in seed["question_type"].items()}
  by_id = {str(q["question_id"]): {"answer": q["answer"], "data_type": q["data_type"],
                                   "question_type": type_names[q["question_type_id"]]}
           for q in seed["questions"]}
  annotations = files.select_annotations(by_id, examples, annotations_file)
  examples, missing = files.drop_missing_images(examples)
  return BenchmarkData(examples, annotations, missing)


BENCHMARKS.register("seed")(Benchmark(
    name="seed", reader=read_seed, scorer="seed", prompt_style="multiple_choice",
    max_new_tokens=128,
    layout={"questions_file": "llava-seed-bench.jsonl", "image_dir": ".",
            "annotations_file": "SEED-Bench.json"}))
