"""Measured (N, V, accuracy) points from harness results, CSV files or the paper's table."""
import collections
import csv
import dataclasses
import importlib.resources
import json
import os

import numpy as np

PAPER_REFERENCE = "paper_scaling_scores.json"


@dataclasses.dataclass(frozen=True)
class ScalingPoints:
  """One point per (N, V): accuracy averaged over `tasks` (all arrays [P])."""
  llm_params_b: np.ndarray
  visual_tokens: np.ndarray
  accuracy: np.ndarray
  tasks: tuple[str, ...] = ()

  @property
  def error(self):
    return 1.0 - self.accuracy

  def __len__(self):
    return len(self.accuracy)


def points_from_rows(rows, tasks=None, source="rows"):
  """Averages rows {llm_params_b | llm_params, visual_tokens, accuracy[, task | benchmark]}.

  Repeated (N, V, task) rows are averaged first, then tasks per (N, V). Every
  (N, V) must carry the same tasks so that the averages are comparable.
  """
  by_config = collections.defaultdict(lambda: collections.defaultdict(list))
  for i, row in enumerate(rows):
    where = f"{source} row {i}"
    missing = [c for c in ("visual_tokens", "accuracy") if c not in row]
    if "llm_params_b" not in row and "llm_params" not in row:
      missing.insert(0, "llm_params_b (or llm_params)")
    if missing:
      raise ValueError(f"{where} lacks {', '.join(missing)}")
    if "llm_params_b" in row:
      n = _number(row["llm_params_b"], "llm_params_b", where)
    else:
      n = _number(row["llm_params"], "llm_params", where) / 1e9
    v = _number(row["visual_tokens"], "visual_tokens", where)
    accuracy = _number(row["accuracy"], "accuracy", where)
    if n <= 0 or v <= 0:
      raise ValueError(f"{where}: llm_params_b and visual_tokens must be positive")
    if not 0.0 <= accuracy <= 1.0:
      raise ValueError(f"{where}: accuracy {accuracy} is outside [0, 1] (give fractions)")
    task = row.get("task", row.get("benchmark"))
    by_config[(n, v)][None if task in (None, "") else str(task)].append(accuracy)
  if not by_config:
    raise ValueError(f"{source} holds no measurements")

  found = set().union(*(per_task.keys() for per_task in by_config.values()))
  if tasks:
    unknown = sorted(set(tasks) - found, key=str)
    if unknown:
      raise ValueError(f"{source} has no rows for task(s) {', '.join(unknown)}; "
                       f"found: {', '.join(sorted(map(str, found)))}")
    selected = set(tasks)
  else:
    selected = found
  configs = sorted(by_config)
  accuracy = []
  for config in configs:
    per_task = by_config[config]
    lacking = selected - per_task.keys()
    if lacking:
      raise ValueError(
          f"{source}: N={config[0]:g}B V={config[1]:g} has no rows for task(s) "
          f"{', '.join(sorted(map(str, lacking)))}; averages would not be comparable "
          "(select tasks with --tasks)")
    accuracy.append(np.mean([np.mean(per_task[t]) for t in selected]))
  configs = np.array(configs, dtype=float)
  return ScalingPoints(configs[:, 0], configs[:, 1], np.array(accuracy),
                       tuple(sorted(t for t in selected if t is not None)))


def points_from_paper_table(table, source="paper table"):
  """The reference format: {llm_params_billions, visual_tokens, mean_accuracy: {N: [acc per V]}}."""
  missing = [k for k in ("visual_tokens", "mean_accuracy") if k not in table]
  if missing:
    raise ValueError(f"{source} lacks {', '.join(missing)}")
  visual_tokens = table["visual_tokens"]
  rows = []
  for n, accuracies in table["mean_accuracy"].items():
    if len(accuracies) != len(visual_tokens):
      raise ValueError(f"{source}: N={n} has {len(accuracies)} accuracies for "
                       f"{len(visual_tokens)} visual-token counts")
    rows += [{"llm_params_b": float(n), "visual_tokens": v, "accuracy": a}
             for v, a in zip(visual_tokens, accuracies)]
  return points_from_rows(rows, source=source)


def load_points(path, tasks=None):
  """Reads a harness results.json (list of rows, or {"results": [...]}), a CSV or the paper's JSON."""
  path = os.fspath(path)
  source = os.path.basename(path)
  if path.endswith(".csv"):
    with open(path, newline="") as f:
      reader = csv.DictReader(f)
      missing = [c for c in ("llm_params_b", "visual_tokens", "accuracy")
                 if c not in (reader.fieldnames or [])]
      if missing:
        raise ValueError(f"{source} lacks column(s) {', '.join(missing)}")
      return points_from_rows(list(reader), tasks, source)
  with open(path) as f:
    data = json.load(f)
  if isinstance(data, dict) and "mean_accuracy" in data:
    if tasks:
      raise ValueError(f"{source} holds averaged accuracies only; it has no tasks to select")
    return points_from_paper_table(data, source)
  if isinstance(data, dict) and "results" in data:
    data = data["results"]
  if not isinstance(data, list):
    raise ValueError(f"{source}: expected a list of rows, {{'results': [...]}} "
                     "or the paper's table")
  return points_from_rows(data, tasks, source)


def load_paper_reference():
  """The paper's averaged visual-reasoning accuracies (a copy ships with the package)."""
  text = importlib.resources.files(__package__).joinpath(PAPER_REFERENCE).read_text()
  return points_from_paper_table(json.loads(text), PAPER_REFERENCE)


def _number(value, column, where):
  try:
    return float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{where}: {column} {value!r} is not a number") from None
