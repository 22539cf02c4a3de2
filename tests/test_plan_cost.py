"""`vlm-jax plan --cost full`: the planner under vlm_jax.flops' full inference cost.

The full-cost plan is checked against an exhaustive search over every (N, V) pair; the
decode FLOPs against a token-by-token sum; `--cost paper` against today's plans.
All numpy: no model is built or compiled.
"""
import json

import numpy as np
import pytest

from vlm_jax import cli, configs, flops, scaling

CLIP = "vlm:vision=clip_vit_l_14_336,compressor=quecc"
SIGLIP = "vlm:vision=siglip_so400m_14_384,compressor=quecc"
Q = 50


@pytest.fixture(scope="module")
def paper_fit():
  return scaling.fit_scaling_law(scaling.load_paper_reference(), bootstrap=0)


def plan(capsys, *flags):
  """The JSON plan of `vlm-jax plan --text-tokens Q FLAGS --json`."""
  assert cli.main(["plan", "--text-tokens", str(Q), *flags, "--json"]) == 0
  return json.loads(capsys.readouterr().out)


def user_error(capsys, *flags):
  """The one stderr line of `vlm-jax plan FLAGS`, which must exit with status 2."""
  assert cli.main(["plan", *flags]) == 2
  captured = capsys.readouterr()
  [line] = captured.err.splitlines()
  assert line.startswith("vlm-jax plan: error: ") and not captured.out
  return line


def brute_force(fit, cost, budget, v_max):
  """(N, V, total FLOPs, predicted error) of the lowest-error affordable pair among every
  paper size N and every whole V in 1..v_max, or None."""
  n = np.array(sorted(flops.PAPER_LLM_PRESETS))[:, None]
  v = np.arange(1, v_max + 1)[None, :]
  total = cost(n, v, Q)
  error = np.where(total <= budget, fit.predict_error(n, v, Q), np.inf)
  i, j = np.unravel_index(np.argmin(error), error.shape)
  if not np.isfinite(error[i, j]):
    return None
  return n[i, 0], v[0, j], total[i, j], error[i, j]


@pytest.mark.parametrize("model", [CLIP, SIGLIP])
@pytest.mark.parametrize("answer_tokens", [0, 20])
def test_cost_totals_are_inference_flops(model, answer_tokens):
  # The cost counts V with an even split of the grid: inference_flops' exact count where
  # the square target grid divides the tower's (g = 24 for CLIP-L, 27 for SigLIP).
  cost = flops.InferenceCost(model, answer_tokens=answer_tokens)
  g = int(np.sqrt(cost.max_visual_tokens))
  for n, llm in flops.PAPER_LLM_PRESETS.items():
    config = configs.preset(f"{model},llm={llm}")
    for side in (s for s in range(1, g + 1) if g % s == 0):
      expected = flops.inference_flops(config, Q, side * side, answer_tokens=answer_tokens)
      parts = cost.breakdown(n, side * side, Q)
      assert parts.keys() == expected.keys()
      for key, value in expected.items():
        assert parts[key] == pytest.approx(value, rel=1e-12), (n, side, key)


@pytest.mark.parametrize("model, budgets_gflops", [
    (CLIP, (400, 500, 1000, 2000, 6000, 40000)), (SIGLIP, (600, 800, 1000, 3000, 12000, 40000))])
@pytest.mark.parametrize("answer_tokens", [0, 20])
def test_full_cost_plan_is_the_brute_force_optimum(capsys, paper_fit, model, budgets_gflops,
                                                   answer_tokens):
  cost = flops.InferenceCost(model, answer_tokens=answer_tokens)
  edge = float(cost(7.0, 64, Q)) / 1e9  # (7B, 64) at the very edge of the budget
  chosen = set()
  for budget in (*budgets_gflops, edge):
    flags = ["--budget-gflops", repr(budget), "--cost", "full", "--model", model,
             "--answer-tokens", str(answer_tokens)]
    best = brute_force(paper_fit, cost, budget * 1e9, cost.max_visual_tokens)
    if best is None:
      assert "affords no configuration" in user_error(capsys, "--text-tokens", str(Q), *flags)
      continue
    result = plan(capsys, *flags)
    n, v, total, error = best
    assert (result["llm_params_b"], result["visual_tokens"]) == (n, v), budget
    assert result["cost_gflops"] == pytest.approx(total / 1e9, rel=1e-12)
    assert result["predicted_error"] == pytest.approx(error, rel=1e-12)
    assert result["cost"] == "full" and result["answer_tokens"] == answer_tokens
    assert result["flops"] == pytest.approx(
        {key: float(value) for key, value in cost.breakdown(n, v, Q).items()}, rel=1e-12)
    assert result["flops"]["total"] == pytest.approx(total, rel=1e-12)
    chosen.add((n, v))
  assert len(chosen) >= 4  # the budgets move the plan


def test_max_visual_tokens_lowers_the_towers_grid(capsys, paper_fit):
  cost = flops.InferenceCost(CLIP)
  result = plan(capsys, "--budget-gflops", "40000", "--cost", "full", "--model", CLIP,
                "--max-visual-tokens", "64")
  assert (result["llm_params_b"], result["visual_tokens"]) == brute_force(
      paper_fit, cost, 40000e9, 64)[:2] == (14.0, 64)


def test_decode_is_one_cached_token_per_answer_token_beyond_the_first():
  config = configs.preset(f"{CLIP},llm=qwen1_5_0_5b,budget=16")
  llm, context = config.llm, Q + 16
  one = flops.llm_flops(llm, 1, head_tokens=1)
  per_pair = 4 * llm.num_layers * llm.num_heads * llm.head_dim
  for answer_tokens in (0, 1, 2, 20):
    # Token k = 1..A-1 attends to the context, the k - 1 answer tokens before it, itself.
    expected = sum(one["dense"] + one["head"] + per_pair * (context + k)
                   for k in range(1, answer_tokens))
    row = flops.inference_flops(config, Q, answer_tokens=answer_tokens)
    assert row["decode"] == expected
    assert row["total"] == flops.inference_flops(config, Q)["total"] + expected


def test_flops_command_shows_decoding_only_when_asked(capsys):
  spec = f"{CLIP},llm=qwen1_5_0_5b"
  assert cli.main(["flops", "--model", spec, "--text-tokens", str(Q)]) == 0
  header = capsys.readouterr().out.splitlines()[2]
  assert header == ("| model | N (B) | Q | V | vision | compressor | query pass | projector | "
                    "LLM | total | paper 2N(Q+V) | LLM % of total |")
  assert cli.main(["flops", "--model", spec, "--text-tokens", str(Q), "--answer-tokens", "10",
                   "--json"]) == 0
  [row] = json.loads(capsys.readouterr().out)
  assert row["decode"] == flops.inference_flops(spec, Q, answer_tokens=10)["decode"] > 0
  assert cli.main(["flops", "--model", spec, "--text-tokens", str(Q), "--answer-tokens", "10"]
                  ) == 0
  assert "| A | vision |" in capsys.readouterr().out


# `vlm-jax plan --text-tokens 50 --json` before --cost: (N, V, cost GFLOPs) per budget.
TODAYS_PLANS = {100: (0.5, 50, 100.0), 300: (1.8, 33, 298.8), 1000: (7.0, 21, 994.0),
                2000: (14.0, 21, 1988.0), 5000: (14.0, 128, 4984.0),
                20000: (14.0, 664, 19992.0)}
TODAYS_TEXT = """budget 1000 GFLOPs, Q = 50 text tokens (fit: paper reference numbers)
  LLM size          7B
  visual tokens     21
  predicted acc     0.5085
  cost              994 GFLOPs
  closed-form V*    13.5 (continuous N and V)"""


def test_paper_cost_is_todays_plan(capsys, paper_fit):
  for budget, (n, v, cost) in TODAYS_PLANS.items():
    default = plan(capsys, "--budget-gflops", str(budget))
    assert plan(capsys, "--budget-gflops", str(budget), "--cost", "paper") == default
    assert (default["llm_params_b"], default["visual_tokens"], default["cost_gflops"]) == (
        n, v, cost)
    assert default["predicted_error"] == pytest.approx(paper_fit.predict_error(n, v))
    assert default["cost"] == "paper" and "flops" not in default
  assert cli.main(["plan", "--budget-gflops", "1000", "--text-tokens", str(Q)]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines.pop(1) == "cost: paper, 2·N·(Q + V)"
  assert lines == TODAYS_TEXT.splitlines()


@pytest.mark.parametrize("flags, expected", [
    (["--cost", "full"], "--cost full needs --model"),
    (["--cost", "full", "--model", f"{CLIP},llm=qwen1_5_7b"], "without an LLM"),
    (["--cost", "full", "--model", "qwen1_5_7b"], "without an LLM"),
    (["--cost", "full", "--model", "vlm:vision=clip"], "unknown model preset 'clip'"),
    (["--model", CLIP], "--model is for --cost full"),
    (["--cost", "paper", "--answer-tokens", "10"], "--answer-tokens is for --cost full"),
    (["--cost", "full", "--model", CLIP, "--llm-params-b", "3,7"],
     "presets for --llm-params-b 0.5, 1.8, 4, 7, 14 (billions) alone; got 3"),
    (["--cost", "full", "--model", CLIP, "--continuous"], "--continuous is for --cost paper"),
    (["--cost", "full", "--model", CLIP, "--max-visual-tokens", "577"],
     "more than the 576 visual tokens"),
    (["--cost", "full", "--model", CLIP, "--answer-tokens", "-1"],
     "answer_tokens must be non-negative"),
])
def test_bad_flag_combinations_are_one_line(capsys, flags, expected):
  line = user_error(capsys, "--budget-gflops", "3000", "--text-tokens", str(Q), *flags)
  assert expected in line and "Traceback" not in line
