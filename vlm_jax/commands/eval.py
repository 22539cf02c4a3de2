"""Evaluate checkpoints at visual-token budgets on benchmarks; writes results.json/.csv/.md.

On several hosts every host runs the same command (see launch/eval.sh): each answers its
share of the questions, and process 0 writes the results under its --workdir.
"""
import argparse

from vlm_jax import distributed, errors


def add_arguments(parser):
  parser.add_argument("--config", required=True, help="eval config file[:arg], configs/eval/")
  parser.add_argument("--checkpoints", required=True, help="comma-separated model checkpoints")
  parser.add_argument("--budgets", type=_budgets,
                      help="comma-separated V (default: each checkpoint's own)")
  parser.add_argument("--workdir", required=True, help="where results and answers go")
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE",
                      help="override a config field, e.g. --set data.batch_size=8 "
                      "--set data.template=vicuna_v1 --set dtype=bfloat16 --set mesh.tensor=4 "
                      "(repeatable)")
  distributed.add_arguments(parser)


def _budgets(text):
  """'1,4,16' -> [1, 4, 16] (argparse reports a bad value)."""
  if not all(item.strip().isdigit() and int(item) > 0 for item in text.split(",")):
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of positive "
                                     "visual-token counts, e.g. 1,4,16")
  return [int(item) for item in text.split(",")]


def run(args):
  with errors.user_input(ValueError):  # incomplete multi-host settings
    distributed.initialize_from_args(args)
  from vlm_jax import configs
  from vlm_jax.evaluate import harness, results
  with errors.user_input():
    config = configs.load(args.config)
  rows = harness.run(config, args.checkpoints.split(","), args.workdir, args.budgets,
                     overrides=args.overrides)
  print(results.markdown_table(rows))
  return 0
