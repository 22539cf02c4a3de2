"""accuracy_all: every scorer's score over all questions (the unanswered ones wrong), carried
into the results files, and the metric `vlm-jax fit` and the study report fit by default."""
import csv
import dataclasses
import json
import math
import os

import ml_collections
import numpy as np
import pytest

from vlm_jax import cli, configs, scaling, study_report
from vlm_jax.evaluate import SCORERS, harness, results
from vlm_jax.evaluate.benchmarks.benchmark import BenchmarkData

TINY_VLM = "vlm:llm=tiny_llm:size=s,vision=tiny_vision,compressor=quecc,budget=4"


# ---------------------------------------------------------------- scorers


def test_vqa_soft_scores_over_all_questions():
  annotations = {1: ["2"] * 3 + ["3"] * 7, 2: ["yes"] * 10, 3: ["red"] * 10}
  result = SCORERS.get("vqa")({1: "Two", 2: "Yes."}, annotations)
  assert result["accuracy"] == pytest.approx((0.9 + 1.0) / 2)
  assert result["accuracy_all"] == pytest.approx((0.9 + 1.0) / 3)


def test_gqa_and_exact_match_over_all_questions():
  gqa = SCORERS.get("gqa")({"a": "Yes.", "b": "yes"}, {"a": "yes", "b": "no", "c": "left"})
  assert gqa["accuracy"] == pytest.approx(1 / 2) and gqa["accuracy_all"] == pytest.approx(1 / 3)
  exact = SCORERS.get("exact_match")({0: "circle", 1: "blue", 2: "red"},
                                     {0: "circle", 1: "blue", 2: "green", 3: "red", 4: "red"})
  assert exact["accuracy"] == pytest.approx(2 / 3)
  assert exact["accuracy_all"] == pytest.approx(2 / 5)


def test_pope_counts_an_unanswered_question_wrong_whatever_its_label():
  # LLaVA's parse reads an empty answer as yes; unanswered must not be scored as one.
  annotations = {i: {"label": label, "split": "random"}
                 for i, label in enumerate(["yes", "no", "yes", "no"])}
  result = SCORERS.get("pope")({0: "Yes", 1: "Yes"}, annotations)
  assert result["accuracy"] == pytest.approx(1 / 2)
  assert result["accuracy_all"] == pytest.approx(1 / 4)
  assert result["f1"] == pytest.approx(2 / 3)  # F1 stays over the answered questions


def test_scienceqa_and_seed_match_their_missing_as_wrong_counts():
  choices = ["x", "y", "z"]
  problems = {str(i): {"choices": choices, "answer": i % 3, "has_image": True} for i in range(6)}
  scienceqa = SCORERS.get("scienceqa")({"0": "A", "1": "B", "2": "A", "3": "junk"}, problems)
  assert scienceqa["accuracy"] == pytest.approx(2 / 4)
  assert scienceqa["accuracy_all"] == pytest.approx(2 / 6)
  assert scienceqa["accuracy_all"] == pytest.approx(scienceqa["accuracy_missing_as_wrong"])
  questions = {str(i): {"answer": "A", "data_type": "image", "question_type": "t"}
               for i in range(5)}
  seed = SCORERS.get("seed")({"0": "A", "1": "B", "2": "A"}, questions)
  assert seed["accuracy"] == pytest.approx(2 / 3) and seed["accuracy_all"] == pytest.approx(2 / 5)
  assert seed["accuracy_all"] == pytest.approx(seed["accuracy_missing_as_wrong"])


def test_mme_questions_right_over_all_questions():
  def q(image, answer):
    return {"category": "color", "image_id": image, "answer": answer}
  annotations = {"a#0": q("a", "Yes"), "a#1": q("a", "No"), "b#0": q("b", "Yes"),
                 "b#1": q("b", "No")}
  result = SCORERS.get("mme")({"a#0": "Yes", "a#1": "No", "b#0": "Yes"}, annotations)
  assert result["accuracy"] == 1.0 and result["accuracy_all"] == pytest.approx(3 / 4)
  # MME's own acc / acc+ / score stay over the answered questions.
  assert result["subtasks"]["color"] == {"acc": 100.0, "acc_plus": 100.0, "score": 200.0}


def test_mmbench_circular_group_with_an_unanswered_row_is_wrong():
  options = {"A": "dog", "B": "cat", "C": "bird"}

  def row(answer):
    return {"answer": answer, "options": options, "category": "c", "l2_category": "l"}
  annotations = {
      5: row("A"), 1_000_005: row("C"), 2_000_005: row("B"),  # one rotation wrong
      7: row("B"), 1_000_007: row("A"),  # both right
      9: row("C"), 1_000_009: row("B"),  # one right, one unanswered
      11: row("A"), 1_000_011: row("B"),  # nothing answered
  }
  predictions = {5: "A", 1_000_005: "C", 2_000_005: "A", 7: "B", 1_000_007: "A. dog", 9: "C"}
  result = SCORERS.get("mmbench")(predictions, annotations)
  # accuracy: 7 and 9 right of the 3 groups with an answer; accuracy_all: 7 of all 4.
  assert result["accuracy"] == pytest.approx(2 / 3)
  assert result["accuracy_all"] == pytest.approx(1 / 4)
  flat = SCORERS.get("mmbench")(predictions, annotations, circular=False)
  assert flat["accuracy"] == pytest.approx(5 / 6) and flat["accuracy_all"] == pytest.approx(5 / 9)


def test_nothing_answered_scores_zero_over_all_and_nothing_at_all_is_nan():
  for name in SCORERS.names():
    assert math.isnan(SCORERS.get(name)({}, {})["accuracy_all"])
  result = SCORERS.get("vqa")({}, {1: ["3"] * 10})
  assert math.isnan(result["accuracy"]) and result["accuracy_all"] == 0.0


def test_everything_answered_gives_the_same_accuracy():
  result = SCORERS.get("gqa")({"a": "yes", "b": "yes"}, {"a": "yes", "b": "no"})
  assert result["accuracy_all"] == result["accuracy"] == 0.5


# ---------------------------------------------------------------- harness rows, results files


def _data(n_questions, missing_images=()):
  return BenchmarkData(examples=[], annotations={i: "x" for i in range(n_questions)},
                       missing_images=list(missing_images))


def test_harness_row_carries_accuracy_all():
  config = configs.preset(TINY_VLM)
  metrics = SCORERS.get("exact_match")({0: "x", 1: "y"}, {i: "x" for i in range(4)})
  generated = harness.Generated(answers={0: "x", 1: "y"}, text_tokens=5.0,
                                skipped={"skipped_missing_image": 1}, generated_tokens=6,
                                seconds=2.0)
  row = harness._row("ckpt", "easy_vqa", config, metrics, generated, _data(4, ["gone.png"]),
                     "answers.jsonl")
  assert (row["accuracy"], row["accuracy_all"]) == (0.5, 0.25)
  assert row["n_unanswered"] == 2 and row["n_skipped"] == 1
  assert (row["questions_per_s"], row["generated_tokens_per_s"]) == (1.0, 3.0)
  test_split = BenchmarkData(examples=[], annotations=None, missing_images=[])
  row = harness._row("ckpt", "vqav2", config, harness._score(None, {}, test_split),
                     dataclasses.replace(generated, skipped={}), test_split, "answers.jsonl")
  assert math.isnan(row["accuracy_all"])


def _result_row(checkpoint, benchmark, accuracy, accuracy_all=None, n_unanswered=0, **fields):
  row = {"checkpoint": checkpoint, "benchmark": benchmark, "visual_tokens": 4,
         "accuracy": accuracy, "n_scored": 10, "n_unanswered": n_unanswered, "n_unparsed": 0,
         "n_skipped": 0, **fields}
  if accuracy_all is not None:
    row["accuracy_all"] = accuracy_all
  return row


def test_results_csv_has_accuracy_all_and_the_table_shows_it_where_it_differs(tmp_path):
  rows = [_result_row("runs/a", "gqa", 0.5, 0.4, n_unanswered=2),
          _result_row("runs/a", "pope", 0.8, 0.8),
          _result_row("runs/b", "gqa", 0.6)]  # written before accuracy_all existed
  results.write(str(tmp_path), rows)
  with open(tmp_path / "results.csv", newline="") as f:
    written = list(csv.DictReader(f))
  assert [r["accuracy_all"] for r in written] == ["0.4", "0.8", ""]
  table = (tmp_path / "results.md").read_text()
  assert "| a | 4 | 50.0 (40.0) | 80.0 |" in table and "| b | 4 | 60.0 | – |" in table
  assert "(x): accuracy over all questions" in table
  assert "(x)" not in results.markdown_table(rows[1:])


# ---------------------------------------------------------------- fit, study report


def _scaling_rows():
  """Four (N, V) configurations of gqa; two with unanswered questions, where accuracy_all
  is lower than accuracy."""
  rows = []
  for i, (n, v) in enumerate([(0.5, 1), (0.5, 16), (1.8, 1), (1.8, 16)]):
    accuracy = 0.4 + 0.05 * i
    unanswered = 3 if i % 2 else 0
    rows.append(_result_row(f"runs/n{n}_v{v}", "gqa", accuracy,
                            accuracy - 0.1 if unanswered else accuracy,
                            n_unanswered=unanswered, llm_params_b=n, visual_tokens=v,
                            n_skipped=1 if unanswered else 0, text_tokens=20.0))
  return rows


def _write_json(path, rows):
  path.write_text(json.dumps(rows))
  return str(path)


def _write_plain_csv(path, rows, metric):
  with open(path, "w", newline="") as f:
    writer = csv.DictWriter(f, ["llm_params_b", "visual_tokens", "accuracy", "task"])
    writer.writeheader()
    writer.writerows({"llm_params_b": r["llm_params_b"], "visual_tokens": r["visual_tokens"],
                      "accuracy": r[metric], "task": r["benchmark"]} for r in rows)
  return str(path)


def _fit(capsys, *argv):
  cli.main(["fit", *argv, "--json", "--bootstrap", "0"])
  captured = capsys.readouterr()
  return json.loads(captured.out), captured.err


def test_fit_uses_accuracy_all_and_lists_rows_with_unanswered_questions(tmp_path, capsys):
  rows = _scaling_rows()
  path = _write_json(tmp_path / "results.json", rows)
  np.testing.assert_allclose(scaling.load_points(path).accuracy,
                             [r["accuracy_all"] for r in rows])
  np.testing.assert_allclose(scaling.load_points(path, metric="accuracy").accuracy,
                             [r["accuracy"] for r in rows])

  fitted, listing = _fit(capsys, path)
  assert fitted["metric"] == "accuracy_all"
  assert "2 row(s) with unanswered or skipped questions (accuracy_all counts them as wrong)" in listing
  assert "runs/n0.5_v16  gqa  V=16: 3 of 13 unanswered, 1 skipped by the data pipeline" in listing
  assert "runs/n0.5_v1 " not in listing and "note:" not in listing
  # The same fit as of a plain CSV holding the accuracy_all values.
  expected, _ = _fit(capsys, _write_plain_csv(tmp_path / "all.csv", rows, "accuracy_all"))
  for name in ("A", "alpha", "beta", "D", "rmse"):
    assert fitted[name] == pytest.approx(expected[name])
  measured = [f["measured"]["accuracy"] for f in fitted["frontier"] if f["measured"]]
  assert set(measured) <= {r["accuracy_all"] for r in rows}

  answered, listing = _fit(capsys, path, "--metric", "accuracy")
  expected, _ = _fit(capsys, _write_plain_csv(tmp_path / "answered.csv", rows, "accuracy"))
  assert answered["metric"] == "accuracy" and "(accuracy leaves them out)" in listing
  assert answered["A"] == pytest.approx(expected["A"]) and answered["A"] != fitted["A"]


def test_rows_without_accuracy_all_give_accuracy_only_if_nothing_went_unanswered(tmp_path,
                                                                                 capsys):
  rows = _scaling_rows()
  for row in rows:
    del row["accuracy_all"]
  with pytest.raises(ValueError, match="3 unanswered questions and no accuracy_all"):
    scaling.load_points(_write_json(tmp_path / "old.json", rows))
  complete = [dict(r, n_unanswered=0, n_skipped=0) for r in rows]
  path = _write_json(tmp_path / "complete.json", complete)
  fitted, notes = _fit(capsys, path)
  assert "note: 4 of 4 rows have no accuracy_all" in notes
  np.testing.assert_allclose(scaling.load_points(path).accuracy, [r["accuracy"] for r in rows])


def test_study_report_lists_rows_with_unanswered_questions_and_fits_accuracy_all(tmp_path):
  config = ml_collections.ConfigDict(dict(tasks=["easy_vqa"], bootstrap=0,
                                          budget_multiples=[1, 2], grid_tokens=64))
  workdir = str(tmp_path)
  rows = [dict(r, checkpoint=os.path.join(workdir, "train", f"run{i}", "model"),
               benchmark="easy_vqa", llm_size=f"n{r['llm_params_b']}")
          for i, r in enumerate(_scaling_rows())]
  text = open(study_report.write(config, rows, workdir, "setup")).read()
  assert "## Unanswered or skipped questions" in text
  assert f"| {os.path.join('train', 'run1', 'model')} | easy_vqa | 16 | 3 | 13 | 1 |" in text
  assert "run0" not in text
  assert "| `n0.5` (500M params) | 40.0 | 35.0 |" in text  # accuracy_all at V=1, V=16
  fit = scaling.Fit.load(os.path.join(workdir, "easy_vqa_fit.json"))
  expected = scaling.fit_scaling_law(scaling.points_from_rows(rows, metric="accuracy_all"),
                                     bootstrap=0)
  assert fit.A == pytest.approx(expected.A)


def test_results_csv_rows_with_a_blank_accuracy_all_fall_back_like_old_rows(tmp_path):
  rows = _scaling_rows()
  del rows[0]["accuracy_all"]  # written before accuracy_all, rewritten with the new rows
  results.write(str(tmp_path), rows)
  points = scaling.load_points(tmp_path / "results.csv")
  np.testing.assert_allclose(points.accuracy, [rows[0]["accuracy"]]
                             + [r["accuracy_all"] for r in rows[1:]])
