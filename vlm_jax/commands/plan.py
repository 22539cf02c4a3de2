"""Recommend the LLM size and visual-token count that minimize error under a FLOPs budget."""
import json

from vlm_jax import errors
from vlm_jax.commands import comma_separated

PAPER_GRID_B = "0.5,1.8,4,7,14"
EXAMPLE_MODEL = "vlm:vision=clip_vit_l_14_336,compressor=quecc"
PAPER_COST = "2·N·(Q + V)"


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
                      help="most visual tokens the encoder gives (default: no limit; with "
                      "--cost full, the g² of the model's vision tower)")
  parser.add_argument("--cost", choices=("paper", "full"), default="paper",
                      help=f"paper: the paper's {PAPER_COST} (default); full: vlm_jax.flops' "
                      "count of the vision tower, compressor, query pass, projector, LLM "
                      "prefill and decoding, with the LLM presets of the paper's sizes")
  parser.add_argument("--model", help="with --cost full: a vlm preset spec without the LLM, "
                      f"e.g. {EXAMPLE_MODEL}")
  parser.add_argument("--answer-tokens", type=int, default=0, metavar="A",
                      help="with --cost full: answer tokens decoded per query (default 0)")
  parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args):
  import numpy as np

  from vlm_jax import scaling

  cost_fn, v_max = _full_cost(args) if args.cost == "full" else _paper_cost(args)
  fit, source = _fit(args)
  candidates = np.array(args.llm_params_b)
  q = args.text_tokens
  budget = args.budget_gflops * 1e9
  if args.continuous:
    choice = {"llm_params_range": (candidates.min(), candidates.max())}
  else:
    choice = {"llm_params_b": candidates}
  with errors.user_input(ValueError):  # the budget, sizes and token limit are checked here
    best, = scaling.frontier(fit, budget, q, v_max=v_max, integer_tokens=True,
                             cost_fn=cost_fn, **choice)
  if best is None:
    cheapest = cost_fn(candidates.min(), 1, q) / 1e9
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
      "cost": args.cost,
  }
  if args.cost == "full":
    parts = cost_fn.breakdown(best.llm_params_b, best.visual_tokens, q)
    plan.update(model=args.model, answer_tokens=args.answer_tokens,
                flops={key: float(value) for key, value in parts.items()})
  if args.json:
    print(json.dumps(plan))
    return 0
  print(f"budget {args.budget_gflops:g} GFLOPs, Q = {q:g} text tokens (fit: {source})")
  print(f"cost: {_describe_cost(args)}")
  print(f"  LLM size          {best.llm_params_b:g}B")
  print(f"  visual tokens     {int(best.visual_tokens)}")
  print(f"  predicted acc     {best.accuracy:.4f}")
  print(f"  cost              {best.cost_flops / 1e9:g} GFLOPs")
  if args.cost == "full":
    print("  by part (GFLOPs)  " + ", ".join(f"{key} {plan['flops'][key] / 1e9:.1f}"
                                             for key in cost_fn.PARTS))
  if not np.isinf(v_star):
    paper = ", paper cost" if args.cost == "full" else ""
    print(f"  closed-form V*    {v_star:.1f} (continuous N and V{paper})")
  return 0


def _fit(args):
  """(the scaling-law Fit, where it came from) for --fit, or the paper's numbers."""
  from vlm_jax import scaling

  if not args.fit:
    return (scaling.fit_scaling_law(scaling.load_paper_reference(), bootstrap=0),
            "paper reference numbers")
  with errors.user_input(ValueError):  # a fit file lacking fields, or not JSON
    return scaling.Fit.load(args.fit), args.fit


def _paper_cost(args):
  """(cost_fn, most visual tokens) of --cost paper, refusing the flags of --cost full."""
  from vlm_jax import scaling

  if args.model is not None:
    raise errors.UserError(f"--model is for --cost full; --cost paper's {PAPER_COST} "
                           "counts the LLM alone")
  if args.answer_tokens:
    raise errors.UserError(f"--answer-tokens is for --cost full; --cost paper's {PAPER_COST} "
                           "counts no decoding")
  return scaling.paper_inference_flops, args.max_visual_tokens


def _full_cost(args):
  """(flops.InferenceCost of --model, most visual tokens: the tower's g² or fewer)."""
  from vlm_jax import flops

  if args.model is None:
    raise errors.UserError(f"--cost full needs --model, a vlm preset spec without the LLM, "
                           f"e.g. {EXAMPLE_MODEL}")
  if args.continuous:
    raise errors.UserError("--continuous is for --cost paper; --cost full counts the LLM "
                           "presets of the paper's sizes alone")
  sizes = sorted(flops.PAPER_LLM_PRESETS)
  others = sorted(set(args.llm_params_b) - set(sizes))
  if others:
    raise errors.BadValueError(
        f"--cost full has LLM presets for --llm-params-b {', '.join(f'{n:g}' for n in sizes)} "
        f"(billions) alone; got {', '.join(f'{n:g}' for n in others)}")
  with errors.user_input():  # the model spec and token counts
    cost = flops.InferenceCost(args.model, answer_tokens=args.answer_tokens)
  grid = cost.max_visual_tokens
  if args.max_visual_tokens is not None and args.max_visual_tokens > grid:
    raise errors.BadValueError(f"--max-visual-tokens {args.max_visual_tokens} is more than the "
                               f"{grid} visual tokens the vision tower of {args.model} gives")
  return cost, grid if args.max_visual_tokens is None else args.max_visual_tokens


def _describe_cost(args):
  if args.cost == "paper":
    return f"paper, {PAPER_COST}"
  return f"full, vlm_jax.flops of {args.model} with A = {args.answer_tokens} answer tokens"
