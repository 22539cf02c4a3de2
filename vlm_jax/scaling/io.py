"""Measured (N, V, accuracy or loss) points from harness results, CSV files or the paper's table."""
import collections
import csv
import dataclasses
import importlib.resources
import json
import os

import numpy as np

PAPER_REFERENCE = "paper_scaling_scores.json"
# What a point's accuracy is: over all questions (the unanswered ones wrong) or the answered ones.
METRICS = ("accuracy_all", "accuracy")
# Losses a point may hold instead, the law's Y as they are: nats per answer token.
LOSSES = ("answer_ce",)


@dataclasses.dataclass(frozen=True)
class ScalingPoints:
  """One point per (N, V): a metric averaged over `tasks` (all arrays [P]).

  `values` are accuracies (fractions) or, with `is_loss`, losses; `error`, the
  law's Y, is 1 − accuracy or the loss itself.
  """
  llm_params_b: np.ndarray
  visual_tokens: np.ndarray
  values: np.ndarray
  tasks: tuple[str, ...] = ()
  is_loss: bool = False

  @property
  def accuracy(self):
    if self.is_loss:
      raise AttributeError("these points hold a loss, not an accuracy")
    return self.values

  @property
  def error(self):
    return self.values if self.is_loss else 1.0 - self.values

  def __len__(self):
    return len(self.values)


def points_from_rows(rows, tasks=None, source="rows", metric="accuracy_all"):
  """Averages rows {llm_params_b | llm_params, visual_tokens, metric[, task | benchmark]}.

  metric: accuracy_all (over all questions, the unanswered ones wrong) or
  accuracy (over the answered ones), see `row_metric` for rows without
  accuracy_all; or a loss of LOSSES (answer_ce), which is the points' error.
  Repeated (N, V, task) rows are averaged first, then tasks per (N, V). Every
  (N, V) must carry the same tasks so that the averages are comparable.
  """
  if metric not in METRICS + LOSSES:
    raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS + LOSSES)}")
  by_config = collections.defaultdict(lambda: collections.defaultdict(list))
  for i, row in enumerate(rows):
    where = f"{source} row {i}"
    missing = []
    if "llm_params_b" not in row and "llm_params" not in row:
      missing.append("llm_params_b (or llm_params)")
    if "visual_tokens" not in row:
      missing.append("visual_tokens")
    if not _has(row, metric) and (metric in LOSSES or not _has(row, "accuracy")):
      missing.append("accuracy_all (or accuracy)" if metric == "accuracy_all" else metric)
    if missing:
      raise ValueError(f"{where} lacks {', '.join(missing)}")
    if "llm_params_b" in row:
      n = _number(row["llm_params_b"], "llm_params_b", where)
    else:
      n = _number(row["llm_params"], "llm_params", where) / 1e9
    v = _number(row["visual_tokens"], "visual_tokens", where)
    if n <= 0 or v <= 0:
      raise ValueError(f"{where}: llm_params_b and visual_tokens must be positive")
    by_config[(n, v)][task_of(row)].append(_point_value(row, metric, where))
  if not by_config:
    raise ValueError(f"{source} holds no measurements")

  found = set().union(*(per_task.keys() for per_task in by_config.values()))
  if tasks:
    if found == {None}:
      raise ValueError(f"{source} names no task or benchmark per row; it has no tasks to select")
    unknown = sorted(set(tasks) - found, key=str)
    if unknown:
      raise ValueError(f"{source} has no rows for task(s) {', '.join(unknown)}; "
                       f"found: {', '.join(sorted(map(str, found)))}")
    selected = set(tasks)
  else:
    selected = found
  configs = sorted(by_config)
  values = []
  for config in configs:
    per_task = by_config[config]
    lacking = selected - per_task.keys()
    if lacking:
      raise ValueError(
          f"{source}: N={config[0]:g}B V={config[1]:g} has no rows for task(s) "
          f"{', '.join(sorted(map(str, lacking)))}; averages would not be comparable "
          "(select tasks with --tasks)")
    values.append(np.mean([np.mean(per_task[t]) for t in selected]))
  configs = np.array(configs, dtype=float)
  return ScalingPoints(configs[:, 0], configs[:, 1], np.array(values),
                       tuple(sorted(t for t in selected if t is not None)), metric in LOSSES)


def _point_value(row, metric, where):
  """The row's accuracy (a fraction) or, for a metric of LOSSES, its loss (≥ 0)."""
  if metric in LOSSES:
    loss = _number(row[metric], metric, where)
    if not loss >= 0.0:
      raise ValueError(f"{where}: {metric} {loss} is not a loss (≥ 0)")
    return loss
  accuracy = row_metric(row, metric, where)
  if not 0.0 <= accuracy <= 1.0:
    raise ValueError(f"{where}: {metric} {accuracy} is outside [0, 1] (give fractions)")
  return accuracy


def task_of(row):
  """The row's task or benchmark name, None when it names neither."""
  task = row.get("task", row.get("benchmark"))
  return None if task in (None, "") else str(task)


def row_metric(row, metric="accuracy_all", where="row"):
  """The row's `metric` (one of METRICS) as a number.

  A row without accuracy_all (the paper's table, a plain CSV, harness rows
  written before it existed, blank in results.csv) gives its accuracy: the same number when no
  question went unanswered. Where the row records unanswered questions its
  accuracy leaves them out, so that is an error rather than a silently
  better point.
  """
  if metric not in METRICS:
    raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
  if _has(row, metric):
    return _number(row[metric], metric, where)
  unanswered = _count(row, "n_unanswered", where)
  if metric == "accuracy_all" and unanswered:
    raise ValueError(
        f"{where} ({_describe(row)}) has {unanswered} unanswered questions and no "
        "accuracy_all (it was written before there was one); its accuracy leaves them "
        "out. Evaluate it again (remove the row first), or fit --metric accuracy")
  return _number(row["accuracy"], "accuracy", where)


def n_rows_without(rows, metric):
  """How many rows lack `metric` and so give their accuracy (see row_metric)."""
  return sum(not _has(row, metric) for row in rows)


def incomplete_rows(rows):
  """The rows with unanswered or skipped questions, as dicts {checkpoint, benchmark,
  visual_tokens, n_questions, n_unanswered, n_skipped} (n_unanswered includes the
  questions the data pipeline skipped and those whose image is missing)."""
  listed = []
  for i, row in enumerate(rows):
    where = f"row {i}"
    unanswered, skipped = _count(row, "n_unanswered", where), _count(row, "n_skipped", where)
    if unanswered or skipped:
      listed.append({"checkpoint": row.get("checkpoint"), "benchmark": task_of(row),
                     "visual_tokens": _number(row["visual_tokens"], "visual_tokens", where),
                     "n_questions": _count(row, "n_scored", where) + unanswered,
                     "n_unanswered": unanswered, "n_skipped": skipped})
  return listed


def paper_table_rows(table, source="paper table"):
  """The reference format {llm_params_billions, visual_tokens, mean_accuracy: {N: [acc per V]}}
  as rows {llm_params_b, visual_tokens, accuracy}."""
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
  return rows


def points_from_paper_table(table, source="paper table"):
  """The paper's table (see paper_table_rows) as ScalingPoints."""
  return points_from_rows(paper_table_rows(table, source), source=source)


def read_rows(path):
  """(rows, source name) of a harness results.json (list of rows, or {"results": [...]}),
  a CSV, or the paper's JSON table (one row per N x V)."""
  path = os.fspath(path)
  source = os.path.basename(path)
  if path.endswith(".csv"):
    with open(path, newline="") as f:
      reader = csv.DictReader(f)
      columns = reader.fieldnames or []
      missing = [c for c in ("llm_params_b", "visual_tokens") if c not in columns]
      if not {"accuracy", "accuracy_all"} & set(columns):
        missing.append("accuracy")
      if missing:
        raise ValueError(f"{source} lacks column(s) {', '.join(missing)}")
      return list(reader), source
  with open(path) as f:
    data = json.load(f)
  if isinstance(data, dict) and "mean_accuracy" in data:
    return paper_table_rows(data, source), source
  if isinstance(data, dict) and "results" in data:
    data = data["results"]
  if not isinstance(data, list):
    raise ValueError(f"{source}: expected a list of rows, {{'results': [...]}} "
                     "or the paper's table")
  return data, source


def load_points(path, tasks=None, metric="accuracy_all"):
  """ScalingPoints of a file read_rows reads, from its `metric` (see points_from_rows)."""
  rows, source = read_rows(path)
  return points_from_rows(rows, tasks, source, metric)


def load_paper_reference():
  """The paper's averaged visual-reasoning accuracies (a copy ships with the package)."""
  text = importlib.resources.files(__package__).joinpath(PAPER_REFERENCE).read_text()
  return points_from_paper_table(json.loads(text), PAPER_REFERENCE)


def _number(value, column, where):
  try:
    return float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{where}: {column} {value!r} is not a number") from None


def _has(row, column):
  """Whether the row has a value in `column` (a CSV gives a blank cell where a row had none)."""
  return row.get(column) not in (None, "")


def _count(row, column, where):
  """A count column of the row; 0 where the row has none."""
  return int(_number(row[column], column, where)) if _has(row, column) else 0


def _describe(row):
  """'checkpoint benchmark V=v', with what the row names of these."""
  names = [str(name) for name in (row.get("checkpoint"), task_of(row)) if name]
  return " ".join(names + [f"V={row.get('visual_tokens')}"])
