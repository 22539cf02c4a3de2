"""Answer files, and the submission files of the server-scored benchmarks.

Submission writers cover every question of the split: a question without a
prediction gets an empty answer (as LLaVA's converters do) and is reported,
as is a prediction for a question the split does not have. Each returns
{"n_written", "missing_ids", "unknown_ids"}.
"""
import json
import os
import uuid

import openpyxl
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from vlm_jax.evaluate.benchmarks import files
from vlm_jax.evaluate.benchmarks import mmbench
from vlm_jax.evaluate.vqa_normalize import normalize_answer

# Columns of the MMBench TSV that LLaVA's converter leaves out of the upload.
MMBENCH_DROPPED_COLUMNS = ("hint", "category", "source", "image", "comment", "l2-category")
MMBENCH_PREDICTION_COLUMN = 6


def _makedirs_for(path):
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def write_answers_jsonl(path, answers, model_id):
  """LLaVA's answers file: one `{question_id, prompt, text, answer_id, model_id, metadata}`
  per line. answers: dicts with question_id, prompt, text and optionally
  answer_id (a fresh uuid otherwise) and metadata. Returns the count written."""
  _makedirs_for(path)
  count = 0
  with open(path, "w", encoding="utf-8") as f:
    for answer in answers:
      f.write(json.dumps({
          "question_id": answer["question_id"],
          "prompt": answer["prompt"],
          "text": answer["text"],
          "answer_id": answer.get("answer_id") or uuid.uuid4().hex,
          "model_id": model_id,
          "metadata": answer.get("metadata", {}),
      }) + "\n")
      count += 1
  return count


def read_answers_jsonl(path):
  """{question_id: text} of an answers file; a question answered twice is an error."""
  predictions = {}
  for record in files.read_jsonl(path):
    question_id = record["question_id"]
    if question_id in predictions:
      raise ValueError(f"{path}: question {question_id!r} is answered twice")
    predictions[question_id] = record["text"]
  return predictions


def _coverage(question_ids, predictions):
  known = set(question_ids)
  return {
      "n_written": len(question_ids),
      "missing_ids": [q for q in question_ids if predictions.get(q) is None],
      "unknown_ids": [q for q in predictions if q not in known],
  }


def _write_json(path, records):
  _makedirs_for(path)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(records, f)


def _submitted_answer(text):
  return "" if text is None else normalize_answer(text)


def write_vqav2_submission(path, questions_file, predictions):
  """EvalAI's VQAv2 file: `[{question_id, answer}]` over the question file
  (LLaVA uses llava_vqav2_mscoco_test2015.jsonl), answers normalized."""
  question_ids = [q["question_id"] for q in files.read_jsonl(questions_file)]
  _write_json(path, [{"question_id": q, "answer": _submitted_answer(predictions.get(q))}
                     for q in question_ids])
  return _coverage(question_ids, predictions)


def write_vizwiz_submission(path, questions_file, predictions):
  """EvalAI's VizWiz file: `[{image, answer}]` over the question file, answers normalized."""
  questions = files.read_jsonl(questions_file)
  _write_json(path, [{"image": q["image"],
                      "answer": _submitted_answer(predictions.get(q["question_id"]))}
                     for q in questions])
  return _coverage([q["question_id"] for q in questions], predictions)


def write_mmbench_submission(path, tsv_file, predictions):
  """OpenCompass's MMBench upload (.xlsx): the TSV's rows without the image,
  hint, category, source, comment and l2-category columns, with a `prediction`
  column (the raw model text) inserted at position 6. predictions are keyed by
  the integer row index."""
  rows = mmbench.read_tsv_rows(tsv_file)
  columns = [c for c in (rows[0].keys() if rows else []) if c not in MMBENCH_DROPPED_COLUMNS]
  columns.insert(min(MMBENCH_PREDICTION_COLUMN, len(columns)), "prediction")
  workbook = openpyxl.Workbook()
  sheet = workbook.active
  sheet.append(columns)
  indices = []
  for row in rows:
    index = int(row["index"])
    indices.append(index)
    text = predictions.get(index)
    # openpyxl refuses control characters; a model's text can contain them.
    values = {**row, "index": index,
              "prediction": None if text is None else ILLEGAL_CHARACTERS_RE.sub("", text)}
    sheet.append([values[c] if values[c] != "" else None for c in columns])
  _makedirs_for(path)
  workbook.save(path)
  return _coverage(indices, predictions)
