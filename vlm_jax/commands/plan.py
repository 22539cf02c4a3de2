"""Recommend the LLM size and visual-token count that minimize error under a FLOPs budget."""
import json

from vlm_jax import errors
from vlm_jax.commands import comma_separated

PAPER_GRID_B = "0.5,1.8,4,7,14"


def add_arguments(parser):
  parser.add_argument("--budget-gflops", type=float, required=True,
                      help="inference budget per query in GFLOPs")
  parser.add_argument("--text-tokens", type=float, required=True, metavar="Q",
                      help="text tokens per query")
  parser.add_argument("--fit", help="fit JSON from `vlm-jax fit --save-fit` "
                      "(default: the fit of the paper's numbers)")
  parser.add_argument("--llm-params-b", type=comma_separated(float), default=PAPER_GRID_B,
                      help=f"comma-separated candidate LLM sizes in billions ({PAPER_GRID_B})")
  parser.add_argument("--continuous", action="store_true",
                      help="any LLM size between the smallest and largest candidate")
  parser.add_argument("--max-visual-tokens", type=int,
                      help="most visual tokens the encoder gives (default: no limit)")
  parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
  import numpy as np

  from vlm_jax import scaling

  if args.fit:
    with errors.user_input(ValueError):  # a fit file lacking fields, or not JSON
      fit, source = scaling.Fit.load(args.fit), args.fit
  else:
    fit = scaling.fit_scaling_law(scaling.load_paper_reference(), bootstrap=0)
    source = "paper reference numbers"
  candidates = np.array(args.llm_params_b)
  q = args.text_tokens
  budget = args.budget_gflops * 1e9
  if args.continuous:
    choice = {"llm_params_range": (candidates.min(), candidates.max())}
  else:
    choice = {"llm_params_b": candidates}
  with errors.user_input(ValueError):  # the budget, sizes and token limit are checked here
    best, = scaling.frontier(fit, budget, q, v_max=args.max_visual_tokens,
                             integer_tokens=True, **choice)
  if best is None:
    cheapest = scaling.paper_inference_flops(candidates.min(), 1, q) / 1e9
    raise errors.UserError(f"{args.budget_gflops:g} GFLOPs affords no configuration; the "
                           f"cheapest (N = {candidates.min():g}B, V = 1, Q = {q:g}) costs "
                           f"{cheapest:g} GFLOPs")
  v_star = scaling.optimal_visual_tokens(fit, q)
  plan = {
      "llm_params_b": best.llm_params_b,
      "visual_tokens": int(best.visual_tokens),
      "predicted_accuracy": best.accuracy,
      "predicted_error": best.error,
      "cost_gflops": best.cost_flops / 1e9,
      "budget_gflops": args.budget_gflops,
      "text_tokens": q,
      "optimal_visual_tokens_closed_form": None if np.isinf(v_star) else v_star,
      "fit": source,
  }
  if args.json:
    print(json.dumps(plan))
    return 0
  print(f"budget {args.budget_gflops:g} GFLOPs, Q = {q:g} text tokens (fit: {source})")
  print(f"  LLM size          {best.llm_params_b:g}B")
  print(f"  visual tokens     {int(best.visual_tokens)}")
  print(f"  predicted acc     {best.accuracy:.4f}")
  print(f"  cost              {best.cost_flops / 1e9:g} GFLOPs")
  if not np.isinf(v_star):
    print(f"  closed-form V*    {v_star:.1f} (continuous N and V)")
  return 0
