"""Scaling-law fit, frontier and planner against the paper's numbers and known laws."""
import importlib.resources
import json

import numpy as np
import pytest

from vlm_jax import cli, scaling


@pytest.fixture(scope="module")
def paper_path():
  return str(importlib.resources.files("vlm_jax.scaling") / "paper_scaling_scores.json")


@pytest.fixture(scope="module")
def paper_points(paper_path):
  return scaling.load_points(paper_path)


@pytest.fixture(scope="module")
def paper_fit(paper_points):
  return scaling.fit_scaling_law(paper_points, bootstrap=0)


def test_packaged_reference_is_the_papers_grid(paper_points):
  packaged = scaling.load_paper_reference()
  np.testing.assert_array_equal(packaged.llm_params_b, paper_points.llm_params_b)
  np.testing.assert_array_equal(packaged.visual_tokens, paper_points.visual_tokens)
  np.testing.assert_array_equal(packaged.accuracy, paper_points.accuracy)
  assert len(packaged) == 4 * 7
  assert sorted(set(packaged.llm_params_b)) == [0.5, 1.8, 4, 7]
  assert sorted(set(packaged.visual_tokens)) == [1, 4, 16, 36, 64, 144, 576]
  # The paper's corners: its smallest and its largest configuration.
  accuracy = dict(zip(zip(packaged.llm_params_b, packaged.visual_tokens), packaged.accuracy))
  assert (accuracy[0.5, 1], accuracy[7, 576]) == (0.3855, 0.5354)


def test_paper_fit_exponents(paper_fit):
  # The paper quotes alpha = 0.077 and beta = 0.015 for these averages.
  assert 0.065 <= paper_fit.alpha <= 0.085
  assert 0.013 <= paper_fit.beta <= 0.017
  assert paper_fit.rmse < 0.01


def test_paper_cost_by_hand():
  assert scaling.paper_inference_flops(7, 576, 50) == 2 * 7e9 * 626


@pytest.mark.parametrize("integer_tokens", [False, True])
def test_frontier_uses_one_token_without_text(paper_fit, integer_tokens):
  # Q = 0: the optimum is V = 1 with N = C / 2; these budgets keep N in [0.5, 7]B.
  budgets = np.geomspace(1.2e9, 1.3e10, 6)
  best = scaling.frontier(paper_fit, budgets, 0, llm_params_range=(0.5, 7),
                          integer_tokens=integer_tokens)
  for budget, point in zip(budgets, best):
    assert point.visual_tokens == pytest.approx(1.0)
    assert point.llm_params_b == pytest.approx(budget / 2e9, rel=1e-6)


@pytest.mark.parametrize("integer_tokens", [False, True])
def test_frontier_with_fifty_text_tokens(paper_fit, integer_tokens):
  # Q = 50 puts the optimum near V = 12-14 (the paper); budgets keep N* inside [0.5, 7]B.
  budgets = np.geomspace(8e10, 8e11, 6)
  best = scaling.frontier(paper_fit, budgets, 50, llm_params_range=(0.5, 7),
                          integer_tokens=integer_tokens)
  for budget, point in zip(budgets, best):
    assert 10 <= point.visual_tokens <= 18
    assert point.cost_flops <= budget * (1 + 1e-12)


def test_closed_form_matches_numeric_frontier(paper_fit):
  budgets = np.geomspace(1e12, 1e14, 4)
  for q in (20, 50, 200):
    v_star = scaling.optimal_visual_tokens(paper_fit, q)
    assert v_star == pytest.approx(q * paper_fit.beta / (paper_fit.alpha - paper_fit.beta))
    for point in scaling.frontier(paper_fit, budgets, q, llm_params_range=(0.01, 1e4)):
      assert point.visual_tokens == pytest.approx(v_star, rel=1e-4)
  assert scaling.optimal_visual_tokens(paper_fit, 0) == 1.0


def test_frontier_with_custom_cost(paper_fit):
  # Visual tokens at twice the cost of text: d/dV of (Q + 2V)^alpha V^-beta = 0
  # gives V* = Q·beta / (2(alpha − beta)).
  double_visual = lambda n, v, q: 2.0 * n * 1e9 * (q + 2.0 * v)
  point, = scaling.frontier(paper_fit, 1e13, 50, llm_params_range=(0.01, 1e4),
                            cost_fn=double_visual)
  expected = 50 * paper_fit.beta / (2 * (paper_fit.alpha - paper_fit.beta))
  assert point.visual_tokens == pytest.approx(expected, rel=1e-4)
  # A fixed extra cost shifts the budget and leaves the optimum alone.
  fixed = lambda n, v, q: scaling.paper_inference_flops(n, v, q) + 3e11
  shifted, = scaling.frontier(paper_fit, 1.3e12, 50, llm_params_b=[0.5, 1.8, 4, 7],
                              cost_fn=fixed)
  plain, = scaling.frontier(paper_fit, 1e12, 50, llm_params_b=[0.5, 1.8, 4, 7])
  assert shifted.llm_params_b == plain.llm_params_b
  assert shifted.visual_tokens == pytest.approx(plain.visual_tokens, rel=1e-9)


def test_frontier_over_candidates_by_hand():
  fit = scaling.Fit(A=1.0, alpha=0.1, beta=0.05, D=0.0, rmse=0.0, n_points=0)
  # 8 GFLOPs, Q = 0: N = 1 affords V = 4 (error 4^-0.05 = 0.933), N = 2 affords
  # V = 2 (error 2^-0.15 = 0.901).
  point, = scaling.frontier(fit, 8e9, 0, llm_params_b=[1, 2], integer_tokens=True)
  assert (point.llm_params_b, point.visual_tokens) == (2.0, 2.0)
  assert point.error == pytest.approx(2 ** -0.15)
  assert point.cost_flops == 8e9
  point, = scaling.frontier(fit, 9e9, 0, llm_params_b=[1, 2], integer_tokens=True)
  assert (point.llm_params_b, point.visual_tokens) == (2.0, 2.0)
  point, = scaling.frontier(fit, 9e9, 0, llm_params_b=[1, 2])
  assert point.visual_tokens == pytest.approx(2.25)
  assert scaling.frontier(fit, 1e9, 0, llm_params_b=[1, 2]) == [None]
  point, = scaling.frontier(fit, 1e13, 0, llm_params_b=[1, 2], v_max=576)
  assert (point.llm_params_b, point.visual_tokens) == (2.0, 576.0)


def test_text_in_tokens_prefers_fewest_visual_tokens():
  fit = scaling.Fit(A=1.0, alpha=0.1, beta=0.05, D=0.1, rmse=0.0, n_points=0,
                    tokens_include_text=True)
  assert scaling.optimal_visual_tokens(fit, 50) == 1.0
  point, = scaling.frontier(fit, 1e12, 50, llm_params_range=(0.01, 1e4))
  assert point.visual_tokens == pytest.approx(1.0, rel=1e-5)  # a bounded search of N, to ~1e-6
  assert point.error == pytest.approx(point.llm_params_b ** -0.1 * 51 ** -0.05 + 0.1)


def test_measured_frontier_by_hand():
  points = scaling.ScalingPoints(np.array([1.0, 1.0, 2.0]), np.array([1.0, 4.0, 1.0]),
                                 np.array([0.5, 0.6, 0.55]))
  # Costs with Q = 0: 2, 8 and 4 GFLOPs.
  best = scaling.measured_frontier(points, [1e9, 3e9, 5e9, 1e10])
  assert best[0] is None
  assert [(p.llm_params_b, p.visual_tokens) for p in best[1:]] == [
      (1.0, 1.0), (2.0, 1.0), (1.0, 4.0)]
  assert best[3].accuracy == pytest.approx(0.6)


@pytest.mark.parametrize("resample", ["residuals", "points"])
def test_fit_recovers_a_known_law(resample):
  truth = dict(A=0.8, alpha=0.12, beta=0.03, D=0.2)
  n, v = np.meshgrid([0.5, 1, 2, 4, 8, 16], [1, 4, 16, 64, 256, 576])
  n, v = n.ravel().astype(float), v.ravel().astype(float)
  error = scaling.law_error(tuple(truth.values()), n, v)
  error += np.random.default_rng(0).normal(0, 0.002, error.shape)
  points = scaling.ScalingPoints(n, v, 1 - error)
  fit = scaling.fit_scaling_law(points, bootstrap=40, seed=0, resample=resample)
  assert fit.resample == resample
  for name in ("alpha", "beta"):
    low, high = getattr(fit, f"{name}_ci")
    assert low <= truth[name] <= high
    assert getattr(fit, name) == pytest.approx(truth[name], abs=0.015)
  assert fit.rmse == pytest.approx(0.002, rel=0.5)
  assert scaling.Fit.from_dict(json.loads(json.dumps(fit.to_dict()))) == fit


def test_a_law_without_token_dependence_fits_beta_at_its_bound_and_reads_so():
  n, v = np.meshgrid([0.5, 1, 2, 4], [1, 4, 16, 64])
  n, v = n.ravel().astype(float), v.ravel().astype(float)
  error = scaling.law_error((0.3, 0.5, 0.0, 0.1), n, v)
  fit = scaling.fit_scaling_law(scaling.ScalingPoints(n, v, 1 - error), bootstrap=10)
  assert fit.beta < scaling.AT_ZERO and fit.alpha == pytest.approx(0.5, abs=1e-3)
  assert scaling.describe_fit(fit, 0).startswith(
      f"α = {fit.alpha:.3g} [{fit.alpha_ci[0]:.3g}, {fit.alpha_ci[1]:.3g}], β ≈ 0 [≈ 0, ")
  assert (scaling.format_estimate(1.01e-8, (2.4e-9, 1.7e-8), at_zero=0)
          == "1.01e-08 [2.4e-09, 1.7e-08]")


def test_a_constant_y_leaves_the_exponents_undetermined():
  n, v = np.meshgrid([0.5, 1, 2], [1, 4, 16])
  points = scaling.ScalingPoints(n.ravel().astype(float), v.ravel().astype(float), np.ones(9))
  with pytest.raises(scaling.UndeterminedLawError,
                     match="Y is 0 at every point, so the law's exponents are not determined"):
    scaling.fit_scaling_law(points, bootstrap=2)


def test_fit_refuses_an_unknown_resampling():
  points = scaling.ScalingPoints([1.0, 2.0, 1.0, 2.0], [1.0, 1.0, 4.0, 4.0], [0.5] * 4)
  with pytest.raises(ValueError, match="resample must be one of residuals, points"):
    scaling.fit_scaling_law(points, bootstrap=2, resample="pairs")


def test_rows_average_tasks_and_convert_params():
  rows = [
      {"llm_params": 5e8, "visual_tokens": 4, "accuracy": 0.4, "task": "gqa"},
      {"llm_params": 5e8, "visual_tokens": 4, "accuracy": 0.6, "benchmark": "pope"},
      {"llm_params": 5e8, "visual_tokens": 4, "accuracy": 0.8, "task": "pope"},
      {"llm_params_b": 1.8, "visual_tokens": 4, "accuracy": 0.5, "task": "gqa"},
      {"llm_params_b": 1.8, "visual_tokens": 4, "accuracy": 0.9, "task": "pope"},
  ]
  points = scaling.points_from_rows(rows)
  np.testing.assert_allclose(points.llm_params_b, [0.5, 1.8])
  # pope's two rows average to 0.7 before the task average.
  np.testing.assert_allclose(points.accuracy, [(0.4 + 0.7) / 2, (0.5 + 0.9) / 2])
  assert points.tasks == ("gqa", "pope")
  np.testing.assert_allclose(scaling.points_from_rows(rows, ["gqa"]).accuracy, [0.4, 0.5])
  with pytest.raises(ValueError, match="vqav2"):
    scaling.points_from_rows(rows, ["vqav2"])
  with pytest.raises(ValueError, match="pope"):
    scaling.points_from_rows(rows[:1] + rows[3:])
  with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
    scaling.points_from_rows([{"llm_params_b": 1, "visual_tokens": 1, "accuracy": 45.0}])


def test_csv_missing_column_is_named(tmp_path):
  path = tmp_path / "scores.csv"
  path.write_text("llm_params_b,accuracy\n0.5,0.4\n")
  with pytest.raises(ValueError, match="visual_tokens"):
    scaling.load_points(path)
  path.write_text("llm_params_b,visual_tokens,accuracy,task\n0.5,1,0.4,gqa\n0.5,4,0.5,gqa\n")
  np.testing.assert_allclose(scaling.load_points(path).accuracy, [0.4, 0.5])


def test_results_json_row_missing_field(tmp_path):
  path = tmp_path / "results.json"
  path.write_text(json.dumps([{"visual_tokens": 1, "accuracy": 0.4}]))
  with pytest.raises(ValueError, match="llm_params_b"):
    scaling.load_points(path)


def test_cli_fit_json_writes_figure_and_fit(paper_path, tmp_path, capsys):
  figure, saved = tmp_path / "frontier.png", tmp_path / "fit.json"
  cli.main(["fit", paper_path, "--json", "--bootstrap", "10", "--text-tokens", "50",
            "--figure", str(figure), "--save-fit", str(saved)])
  result = json.loads(capsys.readouterr().out)
  for name in ("A", "alpha", "beta", "D"):
    low, high = result[f"{name}_ci"]
    assert low <= high
  assert 0.065 <= result["alpha"] <= 0.085
  assert 10 <= result["optimal_visual_tokens"] <= 18
  assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert scaling.Fit.load(saved).alpha == result["alpha"]

  cli.main(["plan", "--budget-gflops", "500", "--text-tokens", "50",
            "--fit", str(saved), "--json"])
  plan = json.loads(capsys.readouterr().out)
  assert plan["cost_gflops"] <= 500
  assert plan["llm_params_b"] in (0.5, 1.8, 4.0, 7.0, 14.0)


def test_cli_fit_names_sizes_by_their_params(tmp_path, capsys):
  """A tiny study's LLMs read as 51.5k and 404k, not 0.00B."""
  rows = [{"llm_params_b": n, "visual_tokens": v, "accuracy": 0.9 - 0.2 * (n < 1e-4) - 0.1 / v}
          for n in (5.15e-5, 4.04e-4) for v in (1, 4, 16)]
  path = tmp_path / "results.json"
  path.write_text(json.dumps(rows))
  assert cli.main(["fit", str(path), "--bootstrap", "0"]) == 0
  out = capsys.readouterr().out
  assert "fitted: N in [51.5k, 404k]" in out and "measured N  51.5k  V     1.0" in out


def test_cli_fit_of_a_constant_y_is_one_line(tmp_path, capsys):
  rows = [{"llm_params_b": n, "visual_tokens": v, "accuracy": 1.0}
          for n in (5.15e-5, 4.04e-4) for v in (1, 4, 16)]
  path = tmp_path / "results.json"
  path.write_text(json.dumps(rows))
  assert cli.main(["fit", str(path), "--bootstrap", "0"]) == 2
  assert capsys.readouterr().err == ("vlm-jax fit: error: Y is 0 at every point, so the law's "
                                     "exponents are not determined\n")


def test_cli_plan_defaults_to_paper_fit(capsys, paper_fit):
  cli.main(["plan", "--budget-gflops", "1000", "--text-tokens", "50", "--json"])
  plan = json.loads(capsys.readouterr().out)
  assert {"llm_params_b", "visual_tokens", "predicted_accuracy"} <= plan.keys()
  # 1000 GFLOPs, Q = 50: N = 7B affords V = floor(1e12 / 1.4e10 - 50) = 21; the
  # paper grid's next size, 14B, would need 1.414e12 for one token.
  assert (plan["llm_params_b"], plan["visual_tokens"]) == (7.0, 21)
  expected = 1 - paper_fit.predict_error(7.0, 21)
  assert plan["predicted_accuracy"] == pytest.approx(expected)
  cli.main(["plan", "--budget-gflops", "1000", "--text-tokens", "50", "--json",
            "--continuous"])
  assert 10 <= json.loads(capsys.readouterr().out)["visual_tokens"] <= 18
  assert cli.main(["plan", "--budget-gflops", "1", "--text-tokens", "50"]) == 2
  assert "affords no configuration" in capsys.readouterr().err
