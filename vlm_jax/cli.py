"""The `vlm-jax` console script: one subcommand per module in vlm_jax.commands.

Each command module defines `add_arguments(parser)` and `run(args) -> int`.
"""
import argparse
import importlib
import sys

# name -> module under vlm_jax.commands, imported only when the command runs.
COMMANDS = {
    "compile": "compile",
    "convert": "convert",
    "eval": "eval",
    "fit": "fit",
    "flops": "flops",
    "plan": "plan",
    "study": "study",
    "train": "train",
}


def main(argv=None):
  parser = argparse.ArgumentParser(prog="vlm-jax", description=__doc__.splitlines()[0])
  subparsers = parser.add_subparsers(dest="command", required=True)
  modules = {}
  for name, module_name in COMMANDS.items():
    module = importlib.import_module(f"vlm_jax.commands.{module_name}")
    sub = subparsers.add_parser(name, help=module.__doc__.splitlines()[0])
    module.add_arguments(sub)
    modules[name] = module
  args = parser.parse_args(argv)
  return modules[args.command].run(args) or 0


if __name__ == "__main__":
  sys.exit(main())
