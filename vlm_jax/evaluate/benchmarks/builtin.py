"""The built-in tasks as benchmarks: easy-vqa's test split and the procedural tasks.

Prompts are the questions as the training records ask them; answers are scored by
normalized exact match.
"""
import functools

from vlm_jax.data import procedural
from vlm_jax.data.easy_vqa_source import easy_vqa_records
from vlm_jax.data.records import first_question, reference_answer
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS


def read_records(records, prompt_style=None, num_examples=None):
  """Records with reference answers -> BenchmarkData (the first `num_examples` of them)."""
  del prompt_style  # the questions are asked as in training
  records = list(records)[:num_examples]
  examples = [{"question_id": r["id"], "image": r["image"],
               "prompt": first_question(r["conversations"])} for r in records]
  return BenchmarkData(examples, {r["id"]: reference_answer(r) for r in records}, [])


def _read_easy_vqa(prompt_style=None, split="test", num_examples=None):
  return read_records(easy_vqa_records(split), prompt_style, num_examples)


def _read_procedural(task, prompt_style=None, split="test", num_examples=None, seed=0):
  return read_records(procedural.generate(task, split, seed=seed), prompt_style, num_examples)


def _register(name, reader):
  BENCHMARKS.register(name)(Benchmark(
      name=name, reader=reader, scorer="exact_match", prompt_style="as_trained",
      max_new_tokens=8, layout={}))


_register("easy_vqa", _read_easy_vqa)
for _task in procedural.TASKS.names():
  _register(_task, functools.partial(_read_procedural, _task))
