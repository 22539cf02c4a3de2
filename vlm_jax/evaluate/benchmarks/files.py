"""Reading the LLaVA-1.5 evaluation files shared by several benchmarks."""
import json
import os

from vlm_jax.evaluate import prompts


def read_json(path):
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def read_jsonl(path):
  """A list of the JSON objects of a jsonl file (blank lines skipped)."""
  records = []
  with open(path, encoding="utf-8") as f:
    for line_number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        records.append(json.loads(line))
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{line_number}: not JSON ({e})") from e
  return records


def load_questions(questions_file, image_dir, prompt_style):
  """Examples from a question jsonl `{question_id, image, text, category}`.

  image becomes the path under image_dir; the prompt is built from text.
  """
  examples = []
  for record in read_jsonl(questions_file):
    examples.append({
        "question_id": record["question_id"],
        "image": os.path.join(image_dir, record["image"]),
        "prompt": prompts.build_prompt(prompt_style, record["text"]),
        "category": record.get("category"),
    })
  return examples


def drop_missing_images(examples):
  """(examples whose image file exists or who need none, paths of missing images)."""
  present, missing = [], []
  for example in examples:
    path = example["image"]
    if isinstance(path, str) and not os.path.isfile(path):
      missing.append(path)
    else:
      present.append(example)
  return present, missing


def select_annotations(by_id, examples, source):
  """{question_id: by_id[question_id]} for the examples; an example without one is an error."""
  absent = [e["question_id"] for e in examples if e["question_id"] not in by_id]
  if absent:
    raise ValueError(f"{len(absent)} questions have no annotation in {source}, "
                     f"e.g. {absent[:5]}")
  return {e["question_id"]: by_id[e["question_id"]] for e in examples}
