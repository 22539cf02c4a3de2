"""Evaluate checkpoints at visual-token budgets on benchmarks; writes results.json/.csv/.md."""


def add_arguments(parser):
  parser.add_argument("--config", required=True, help="eval config file[:arg], configs/eval/")
  parser.add_argument("--checkpoints", required=True, help="comma-separated model checkpoints")
  parser.add_argument("--budgets", help="comma-separated V (default: each checkpoint's own)")
  parser.add_argument("--workdir", required=True, help="where results and answers go")


def run(args):
  from vlm_jax import configs
  from vlm_jax.evaluate import harness, results
  budgets = [int(v) for v in args.budgets.split(",")] if args.budgets else None
  rows = harness.run(configs.load(args.config), args.checkpoints.split(","), args.workdir,
                     budgets)
  print(results.markdown_table(rows))
  return 0
