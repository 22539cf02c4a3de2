"""VQAv2 (server-scored on EvalAI; scored locally when annotations are given)."""
from vlm_jax.evaluate.benchmarks import files
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS


def read_vqav2(questions_file, image_dir, annotations_file=None, prompt_style="short_answer"):
  """annotations_file: the official `{"annotations": [{question_id, answers: [{answer}]}]}`
  (e.g. v2_mscoco_val2014_annotations.json); without it annotations is None."""
  examples = files.load_questions(questions_file, image_dir, prompt_style)
  annotations = None
  if annotations_file is not None:
    by_id = {a["question_id"]: [answer["answer"] for answer in a["answers"]]
             for a in files.read_json(annotations_file)["annotations"]}
    annotations = files.select_annotations(by_id, examples, annotations_file)
  examples, missing = files.drop_missing_images(examples)
  return BenchmarkData(examples, annotations, missing)


BENCHMARKS.register("vqav2")(Benchmark(
    name="vqav2", reader=read_vqav2, scorer="vqa", prompt_style="short_answer",
    max_new_tokens=128,
    layout={"questions_file": "llava_vqav2_mscoco_test-dev2015.jsonl",
            "image_dir": "test2015"}))
