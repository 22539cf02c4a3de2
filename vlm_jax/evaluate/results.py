"""The harness's results: one row per checkpoint x budget x benchmark, as JSON, CSV, Markdown."""
import csv
import json
import math
import os

KEY = ("checkpoint", "visual_tokens", "benchmark")
COLUMNS = ("checkpoint", "benchmark", "llm_params_b", "visual_tokens", "text_tokens",
           "inference_gflops", "paper_gflops", "accuracy", "accuracy_all", "n_scored",
           "n_unanswered", "n_unparsed", "n_skipped", "questions_per_s", "generated_tokens_per_s")


def row_key(row):
  return tuple(row[k] for k in KEY)


def load(workdir):
  """The rows already written (empty when there are none)."""
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return json.load(f)


def write(workdir, rows):
  """results.json (all fields), results.csv (the main columns), results.md (accuracy table)."""
  os.makedirs(workdir, exist_ok=True)
  _atomic(os.path.join(workdir, "results.json"), lambda f: json.dump(rows, f, indent=1))
  _atomic(os.path.join(workdir, "results.csv"), lambda f: _write_csv(f, rows))
  _atomic(os.path.join(workdir, "results.md"), lambda f: f.write(markdown_table(rows)))


def _write_csv(f, rows):
  writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
  writer.writeheader()
  writer.writerows(rows)


def _atomic(path, write_fn):
  with open(path + ".tmp", "w", newline="") as f:
    write_fn(f)
  os.replace(path + ".tmp", path)


def markdown_table(rows):
  """Accuracy (%) per benchmark (columns) for each checkpoint and budget (rows); where
  questions went unanswered, the accuracy over all questions follows in parentheses."""
  benchmarks = sorted({r["benchmark"] for r in rows})
  configs = sorted({(r["checkpoint"], r["visual_tokens"]) for r in rows},
                   key=lambda c: (c[0], c[1]))
  by_key = {row_key(r): r for r in rows}
  lines = ["| checkpoint | V | " + " | ".join(benchmarks) + " |",
           "|---|---:|" + "---:|" * len(benchmarks)]
  for checkpoint, v in configs:
    cells = [_cell(by_key.get((checkpoint, v, b))) for b in benchmarks]
    lines.append(f"| {os.path.basename(checkpoint.rstrip('/'))} | {v} | " + " | ".join(cells) + " |")
  if any(_percent(_accuracy_all(r)) != _percent(r["accuracy"]) for r in rows):
    lines += ["", "(x): accuracy over all questions, unanswered and skipped ones counted wrong."]
  return "\n".join(lines) + "\n"


def _accuracy_all(row):
  return row.get("accuracy_all", row["accuracy"])  # rows written before it existed lack it


def _cell(row):
  """accuracy, and accuracy_all in parentheses where it reads differently."""
  if row is None:
    return "–"
  answered, over_all = _percent(row["accuracy"]), _percent(_accuracy_all(row))
  return answered if over_all == answered else f"{answered} ({over_all})"


def _percent(value):
  return "nan" if math.isnan(value) else f"{100 * value:.1f}"
