"""The study's report: the law recovered on both Y kinds, the report rendered from
synthetic rows, and results.md's row names and V order."""
import os
import types

import numpy as np
import pytest

from vlm_jax import scaling, study_report
from vlm_jax.evaluate import results

SIZES = {"xs": 2.9e-5, "s": 1.1e-4}  # billions


def _law(n, v, a, alpha, beta, d):
  return a * n ** -alpha * v ** -beta + d


def _law_rows(metric, law, noise, seed=0):
  """Rows of one task over the paper's N × V grid, `metric` from the law plus noise."""
  rng = np.random.default_rng(seed)
  rows = []
  for n in (0.5, 1.8, 4, 7):
    for v in (1, 4, 16, 64, 144):
      y = _law(n, v, *law) + rng.normal(0, noise)
      rows.append({"llm_params_b": n, "visual_tokens": v, "benchmark": "task",
                   metric: 1 - y if metric == "accuracy_all" else y})
  return rows


@pytest.mark.parametrize("metric, law, noise", [
    ("accuracy_all", (0.5, 0.3, 0.1, 0.1), 0.001),  # error = 1 − accuracy, as the paper
    ("answer_ce", (2.0, 0.2, 0.4, 1.5), 0.002),  # a loss: Y as it is
])
def test_the_fit_recovers_a_known_law(metric, law, noise):
  points = scaling.points_from_rows(_law_rows(metric, law, noise), metric=metric)
  assert points.is_loss == (metric == "answer_ce")
  fit = scaling.fit_scaling_law(points, bootstrap=50)
  for name, truth in zip(("A", "alpha", "beta", "D"), law):
    assert getattr(fit, name) == pytest.approx(truth, rel=0.02), name
    low, high = getattr(fit, f"{name}_ci")
    assert low <= truth <= high, name
  assert fit.rmse < 2 * noise


def test_a_loss_is_not_an_accuracy():
  points = scaling.points_from_rows(_law_rows("answer_ce", (2.0, 0.2, 0.4, 1.5), 0.0),
                                    metric="answer_ce")
  np.testing.assert_array_equal(points.error, points.values)
  with pytest.raises(AttributeError, match="loss"):
    points.accuracy
  with pytest.raises(ValueError, match="lacks answer_ce"):
    scaling.points_from_rows([{"llm_params_b": 1, "visual_tokens": 1, "accuracy": 0.5}],
                             metric="answer_ce")


# ---------------------------------------------------------------- the report


def _row(task, size, v, accuracy, workdir, **fields):
  return {"benchmark": task, "llm_size": size, "llm_params_b": SIZES[size], "visual_tokens": v,
          "text_tokens": 12.0, "accuracy": accuracy, "accuracy_all": accuracy,
          "checkpoint": os.path.join(workdir, "train", size, "model"), "n_scored": 50,
          "n_unanswered": 0, "n_skipped": 0, **fields}


def _study_rows(workdir):
  """2 sizes × V ∈ {16, 4} (listed out of order): easy_vqa with answer CE and shuffled
  accuracies, ocr with neither and one run with unanswered questions."""
  rows = []
  for size, v in [("s", 16), ("xs", 16), ("s", 4), ("xs", 4)]:
    n = SIZES[size] * 1e4
    rows.append(_row("easy_vqa", size, v, 0.9 - 0.3 * n ** -0.1 * v ** -0.05, workdir,
                     answer_ce=0.5 + n ** -0.2 * v ** -0.05, accuracy_all_shuffled=0.21))
    rows.append(_row("ocr", size, v, 0.9 - 0.6 * n ** -0.05 * v ** -0.4, workdir,
                     **({"n_unanswered": 2} if (size, v) == ("xs", 4) else {})))
  return rows


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("study"))
  config = types.SimpleNamespace(tasks=["easy_vqa", "ocr"], bootstrap=5,
                                 budget_multiples=[1, 2, 4, 8], grid_tokens=16)
  path = study_report.write(config, _study_rows(workdir), workdir,
                            "Tiny VLMs trained from scratch.")
  return workdir, open(path).read()


def test_the_report_names_configurations_by_size_in_order_of_n_and_v(report):
  _, text = report
  assert text.startswith("# Scaling study\n\nTiny VLMs trained from scratch.\n")
  easy_vqa = text[text.index("## easy_vqa"):text.index("## ocr")]
  assert "| configuration | V=4 | V=16 |" in easy_vqa
  assert easy_vqa.index("| `xs` (29k params) |") < easy_vqa.index("| `s` (110k params) |")
  assert "(shuffled 21.0) |" in easy_vqa
  assert "Answer-token cross-entropy" in easy_vqa
  assert "| α | " in easy_vqa and "| answer CE (nats per token) | interval |" in easy_vqa
  assert "measured best" in easy_vqa and "`xs`, V=" in easy_vqa


def test_the_report_skips_an_absent_answer_ce_with_a_line(report):
  _, text = report
  ocr = text[text.index("## ocr"):]
  assert "No answer CE fit: 4 of 4 runs record no answer_ce." in ocr
  assert "Answer-token cross-entropy" not in ocr and "shuffled" not in ocr
  assert "| train/xs/model | ocr | 4 | 2 | 52 | 0 |" in text  # the unanswered questions


def test_the_report_writes_fits_and_figures(report):
  workdir, text = report
  for name in ("easy_vqa_fit.json", "easy_vqa_ce_fit.json", "ocr_fit.json",
               "easy_vqa_frontier.png", "ocr_frontier.png"):
    assert os.path.exists(os.path.join(workdir, name)), name
  assert not os.path.exists(os.path.join(workdir, "ocr_ce_fit.json"))
  assert "![easy_vqa: Y against inference FLOPs](easy_vqa_frontier.png)" in text


def test_the_contrast_says_whether_the_beta_intervals_overlap(report):
  workdir, text = report
  contrast = text[text.index("## The contrast"):text.index("## Unanswered")]
  fits = {task: scaling.Fit.load(os.path.join(workdir, f"{task}_fit.json"))
          for task in ("easy_vqa", "ocr")}
  high, low = sorted(fits, key=lambda task: -fits[task].beta)
  apart = fits[high].beta_ci[0] > fits[low].beta_ci[1]
  said = f"β of {high} ({scaling.format_estimate(fits[high].beta, fits[high].beta_ci)}) exceeds"
  assert said in contrast
  assert ("intervals do not overlap" in contrast) == apart
  assert ("intervals overlap" in contrast) == (not apart)


def test_the_report_says_when_the_law_is_not_determined(tmp_path):
  rows = [_row("facts", size, v, 1.0, str(tmp_path), answer_ce=0.1 / v + (size == "xs"))
          for size in SIZES for v in (1, 4, 16)]
  config = types.SimpleNamespace(tasks=["facts"], bootstrap=5, budget_multiples=[1, 2],
                                 grid_tokens=16)
  text = open(study_report.write(config, rows, str(tmp_path), "")).read()
  assert ("- facts: no error fit: Y is 0 at every point, so the law's exponents are not "
          "determined.") in text
  assert not os.path.exists(tmp_path / "facts_fit.json")
  assert os.path.exists(tmp_path / "facts_ce_fit.json")


@pytest.mark.parametrize("low_interval, words", [
    ((0.05, 0.15), "and their intervals do not overlap: visual tokens matter more to ocr"),
    ((0.05, 0.35), "but their intervals overlap"),
    (None, "without intervals"),
])
def test_the_beta_comparison_is_computed(low_interval, words):
  fit = lambda beta, interval: scaling.Fit(1.0, 0.5, beta, 0.1, 0.0, 4, beta_ci=interval)
  sentence = study_report._compare_beta("ocr", fit(0.4, (0.3, 0.5)), "easy_vqa",
                                        fit(0.1, low_interval))
  assert words in sentence


# ---------------------------------------------------------------- results.md


def test_results_md_names_checkpoints_by_their_distinct_ends_and_sorts_v_as_numbers():
  rows = [{"checkpoint": f"runs/study/train/{size}/model", "benchmark": "ocr",
           "visual_tokens": v, "accuracy": 0.5}
          for size in ("xs", "s") for v in (16, "4", 1.0)]
  shuffled = dict(rows[0], images="shuffled", accuracy=0.2)
  lines = results.markdown_table(rows + [shuffled]).splitlines()
  assert [line.split(" | ")[:2] for line in lines[2:]] == [
      [f"| {size}/model", v] for size in ("s", "xs") for v in ("1", "4", "16")
  ] + [["| xs/model (shuffled images)", "16"]]
  assert lines[-1].endswith("| 20.0 |") and lines[-2].endswith("| 50.0 |")
  table = results.markdown_table([dict(rows[0], checkpoint="runs/a"),
                                  dict(rows[0], checkpoint="other/b/")])
  assert "| a | 16 |" in table and "| b | 16 |" in table
