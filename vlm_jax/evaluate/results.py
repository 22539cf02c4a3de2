"""The harness's results: one row per checkpoint x budget x benchmark, as JSON, CSV, Markdown."""
import csv
import json
import math
import os

KEY = ("checkpoint", "visual_tokens", "benchmark")
COLUMNS = ("checkpoint", "benchmark", "llm_params_b", "visual_tokens", "text_tokens",
           "inference_gflops", "paper_gflops", "accuracy", "accuracy_all", "n_scored",
           "n_unanswered", "n_unparsed", "n_skipped", "questions_per_s", "generated_tokens_per_s",
           "images", "answer_ce", "answer_ce_tokens")


def row_key(row):
  """KEY's values; a row whose questions were asked about other questions' images adds its
  `images` ("shuffled"), so that it never stands for the row on their own images (rows
  written before `images` existed asked about their own)."""
  key = tuple(row[k] for k in KEY)
  return key if row.get("images", "own") == "own" else key + (row["images"],)


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
  """Accuracy (%) per benchmark (columns) for each checkpoint, budget and kind of images
  (rows, V in numeric order); where questions went unanswered, the accuracy over all
  questions follows in parentheses. Checkpoints are named by their shortest distinct ends."""
  benchmarks = sorted({r["benchmark"] for r in rows})
  by_key = {_table_key(r): r for r in rows}
  configs = sorted({key[:-1] for key in by_key},
                   key=lambda c: (c[0], c[1] is None, c[1] or 0, c[2]))  # V unset last
  names = _short_names({checkpoint for checkpoint, _, _ in configs})
  lines = ["| checkpoint | V | " + " | ".join(benchmarks) + " |",
           "|---|---:|" + "---:|" * len(benchmarks)]
  for checkpoint, v, images in configs:
    cells = [_cell(by_key.get((checkpoint, v, images, b))) for b in benchmarks]
    name = names[checkpoint] + ("" if images == "own" else f" ({images} images)")
    lines.append(f"| {name} | {'all' if v is None else f'{v:g}'} | " + " | ".join(cells) + " |")
  if any(_percent(_accuracy_all(r)) != _percent(r["accuracy"]) for r in rows):
    lines += ["", "(x): accuracy over all questions, unanswered and skipped ones counted wrong."]
  return "\n".join(lines) + "\n"


def _table_key(row):
  """(checkpoint, V as a number or None where uncompressed, images, benchmark): a table
  row's key and its column."""
  v = row["visual_tokens"]
  return (row["checkpoint"], None if v is None else float(v), row.get("images", "own"),
          row["benchmark"])


def _short_names(paths):
  """{path: its last k parts}, k the fewest that tell the paths apart ('runs/xs/model'
  and 'runs/s/model' -> 'xs/model' and 's/model'); whole paths where none does."""
  parts = {p: p.rstrip("/").split("/") for p in paths}
  for k in range(1, max(map(len, parts.values()), default=0) + 1):
    names = {p: "/".join(split[-k:]) for p, split in parts.items()}
    if len(set(names.values())) == len(names):
      return names
  return {p: p for p in paths}


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
