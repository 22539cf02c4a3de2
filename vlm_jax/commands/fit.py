"""Fit the scaling law Y = A·N^(−α)·T^(−β) + D to measured accuracies and show the frontier."""
import json
import os
import sys

from vlm_jax import errors
from vlm_jax.commands import comma_separated

FIGURE_NAME = "scaling_frontier.png"
FIT_NAME = "scaling_fit.json"
N_DEFAULT_BUDGETS = 5


def add_arguments(parser):
  parser.add_argument("file", help="harness results.json, a CSV with llm_params_b,"
                      "visual_tokens,accuracy[,task], or the paper's reference JSON")
  parser.add_argument("--text-tokens", type=float, default=0.0, metavar="Q",
                      help="text tokens per query for the cost and frontier (default 0)")
  parser.add_argument("--tasks", help="comma-separated tasks/benchmarks to average")
  parser.add_argument("--metric", choices=("accuracy_all", "accuracy"), default="accuracy_all",
                      help="accuracy_all (default): over all questions, the unanswered and "
                      "skipped ones wrong; accuracy: over the answered ones. A row without "
                      "accuracy_all gives its accuracy if it records no unanswered question")
  parser.add_argument("--include-text-in-T", dest="include_text", action="store_true",
                      help="fit with T = Q + V (text not cached) instead of T = V")
  parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples")
  parser.add_argument("--resample", choices=("residuals", "points"), default="residuals",
                      help="what the bootstrap draws: the fit's residuals on the measured "
                      "grid (default) or the points themselves")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--budgets-gflops", type=comma_separated(float),
                      help="comma-separated budgets for the frontier "
                      f"(default: {N_DEFAULT_BUDGETS} across the measured costs)")
  parser.add_argument("--json", action="store_true", help="print one JSON object")
  where = parser.add_mutually_exclusive_group()
  where.add_argument("--out", metavar="DIR",
                     help=f"write {FIGURE_NAME} and {FIT_NAME} into DIR")
  where.add_argument("--figure", metavar="PATH", help="write the figure (PNG) here")
  parser.add_argument("--save-fit", metavar="PATH", help="write the fit as JSON here")


def _interval(ci):
  return "" if ci is None else f"  [{ci[0]:.4g}, {ci[1]:.4g}]"


def _configuration(point):
  from vlm_jax import scaling
  if point is None:
    return "nothing affordable"
  return (f"N {scaling.format_params(point.llm_params_b):>6s}  V {point.visual_tokens:7.1f}  "
          f"acc {point.accuracy:.4f}")


def _print_row_notes(rows, metric, out):
  """Every row with unanswered or skipped questions, with its counts, and how many rows
  give their accuracy for a missing accuracy_all."""
  from vlm_jax import scaling

  listed = scaling.incomplete_rows(rows)
  if listed:
    treatment = "counts them as wrong" if metric == "accuracy_all" else "leaves them out"
    print(f"{len(listed)} row(s) with unanswered or skipped questions ({metric} {treatment}):",
          file=out)
  for row in listed:
    print(f"  {row['checkpoint'] or '–'}  {row['benchmark'] or '–'}  "
          f"V={row['visual_tokens']:g}: {row['n_unanswered']} of {row['n_questions']} "
          f"unanswered, {row['n_skipped']} skipped by the data pipeline", file=out)
  lacking = scaling.n_rows_without(rows, metric)
  if metric == "accuracy_all" and lacking:
    print(f"note: {lacking} of {len(rows)} rows have no accuracy_all (the paper's table, a "
          "plain CSV, or harness rows written before it); their accuracy is used, the same "
          "number as they record no unanswered questions", file=out)


def run(args):
  import numpy as np

  from vlm_jax import scaling

  tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else None
  q = args.text_tokens
  with errors.user_input(ValueError):  # the file's rows and the flags are checked here
    rows, source = scaling.read_rows(args.file)
    points = scaling.points_from_rows(rows, tasks, source, args.metric)
    fit = scaling.fit_scaling_law(points, q, args.include_text, args.bootstrap, args.seed,
                                  resample=args.resample)
    if args.budgets_gflops:
      budgets = np.array(args.budgets_gflops) * 1e9
    else:
      costs = scaling.paper_inference_flops(points.llm_params_b, points.visual_tokens, q)
      budgets = np.geomspace(costs.min(), costs.max(), N_DEFAULT_BUDGETS)
    n_range = (points.llm_params_b.min(), points.llm_params_b.max())
    fitted = scaling.frontier(fit, budgets, q, llm_params_range=n_range)
  # With --json, stdout holds the JSON object alone.
  _print_row_notes(rows, args.metric, sys.stderr if args.json else sys.stdout)
  measured = scaling.measured_frontier(points, budgets, q)
  v_star = scaling.optimal_visual_tokens(fit, q)

  figure, fit_path = args.figure, args.save_fit
  if args.out:
    figure = os.path.join(args.out, FIGURE_NAME)
    fit_path = fit_path or os.path.join(args.out, FIT_NAME)
  if fit_path:
    os.makedirs(os.path.dirname(os.path.abspath(fit_path)), exist_ok=True)
    fit.save(fit_path)
  if figure:
    scaling.plot_frontier(points, fit, figure, q)

  if args.json:
    print(json.dumps({
        **fit.to_dict(),
        "metric": args.metric,
        "tasks": list(points.tasks),
        "optimal_visual_tokens": None if np.isinf(v_star) else v_star,
        "frontier": [
            {"budget_gflops": b / 1e9,
             "fitted": None if f is None else f.to_dict(),
             "measured": None if m is None else m.to_dict()}
            for b, f, m in zip(budgets, fitted, measured)],
        "figure": figure,
        "fit_path": fit_path,
    }))
    return 0

  tokens = "Q + V" if fit.tokens_include_text else "V"
  print(f"Y = A·N^(−α)·T^(−β) + D with T = {tokens}, N in billions, "
        f"{fit.n_points} points of {args.metric}"
        + (f", tasks {', '.join(points.tasks)}" if points.tasks else ""))
  if fit.bootstrap:
    print(f"  ({fit.confidence:.0%} intervals from {fit.bootstrap} bootstrap resamples of the "
          f"{fit.resample})")
  for name in ("A", "alpha", "beta", "D"):
    print(f"  {name:6s}{getattr(fit, name):10.4g}{_interval(getattr(fit, name + '_ci'))}")
  print(f"  RMSE  {fit.rmse:10.4g}")
  print(f"optimal visual tokens at Q = {q:g} (closed form): "
        + ("unbounded (alpha <= beta)" if np.isinf(v_star) else f"{v_star:.1f}"))
  print(f"frontier at Q = {q:g} (fitted: N in [{scaling.format_params(n_range[0])}, "
        f"{scaling.format_params(n_range[1])}]):")
  for b, f, m in zip(budgets, fitted, measured):
    print(f"  {b / 1e9:10.4g} GFLOPs  fitted {_configuration(f)}  |  measured {_configuration(m)}")
  if figure:
    print(f"figure: {figure}")
  if fit_path:
    print(f"fit: {fit_path}")
  return 0
