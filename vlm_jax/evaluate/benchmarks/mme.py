"""MME: yes/no questions over 14 subtasks, two per image.

LLaVA's question file (llava_mme.jsonl) gives each image path as the
`question_id` of both of its questions; the reader makes ids unique as
`<path>#0` and `<path>#1` and keeps the path as `image_id`. Answers come from
the MME release folder: per subtask, `questions_answers_YN/*.txt` beside an
`images/` folder, or the .txt files beside the images; each line
`question<TAB>Yes|No`, one file per image.
"""
import collections
import os

from vlm_jax.evaluate import prompts
from vlm_jax.evaluate.benchmarks import files
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData
from vlm_jax.evaluate.registry import BENCHMARKS

YES_OR_NO = "Please answer yes or no."


def read_answer_files(mme_dir):
  """{(subtask, answer file name, question): answer} over the MME release folder."""
  answers = {}
  for subtask in sorted(os.listdir(mme_dir)):
    subtask_dir = os.path.join(mme_dir, subtask)
    if not os.path.isdir(subtask_dir):
      continue
    if os.path.isdir(os.path.join(subtask_dir, "images")):
      subtask_dir = os.path.join(subtask_dir, "questions_answers_YN")
    for name in sorted(os.listdir(subtask_dir)):
      if not name.endswith(".txt"):
        continue
      with open(os.path.join(subtask_dir, name), encoding="utf-8") as f:
        for line in f:
          if line.strip():
            question, answer = line.strip().split("\t")
            answers[subtask, name, question] = answer
  return answers


def _answer_of(answers, subtask, answer_file, question):
  """LLaVA's lookup: the question file drops MME's `Please answer yes or no.`,
  which some answer files precede with two spaces."""
  if YES_OR_NO not in question:
    question = f"{question} {YES_OR_NO}"
    if (subtask, answer_file, question) not in answers:
      question = question.replace(f" {YES_OR_NO}", f"  {YES_OR_NO}")
  key = (subtask, answer_file, question)
  if key not in answers:
    raise ValueError(f"MME has no answer for {key}")
  return answers[key]


def read_mme(questions_file, mme_dir, prompt_style="short_answer"):
  """Image paths in questions_file are relative to mme_dir."""
  examples = files.load_questions(questions_file, mme_dir, prompt_style)
  answers = read_answer_files(mme_dir)
  seen = collections.Counter()
  annotations = {}
  for example in examples:
    image_id = example["question_id"]
    subtask = image_id.split("/")[0]
    answer_file = os.path.splitext(image_id.split("/")[-1])[0] + ".txt"
    question = prompts.strip_instructions(example["prompt"]).strip()
    example["question_id"] = f"{image_id}#{seen[image_id]}"
    example["image_id"] = image_id
    seen[image_id] += 1
    annotations[example["question_id"]] = {
        "category": subtask, "image_id": image_id,
        "answer": _answer_of(answers, subtask, answer_file, question)}
  examples, missing = files.drop_missing_images(examples)
  return BenchmarkData(examples, annotations, missing)


BENCHMARKS.register("mme")(Benchmark(
    name="mme", reader=read_mme, scorer="mme", prompt_style="short_answer",
    max_new_tokens=128,
    layout={"questions_file": "llava_mme.jsonl", "mme_dir": "MME_Benchmark_release_version"}))
