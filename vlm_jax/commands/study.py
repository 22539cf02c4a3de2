"""Run the scaling study on built-in data: train, evaluate, fit, report (resumes on rerun)."""


def add_arguments(parser):
  parser.add_argument("--config", default=None,
                      help="study config file[:arg] (default configs/study/tiny.py)")
  parser.add_argument("--workdir", default="runs/study", help="where runs and report.md go")


def run(args):
  import logging
  import os

  from vlm_jax import configs, study
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
  os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # for the workers: no torch notice
  config = configs.load(args.config or os.path.join(configs.CONFIG_DIR, "study", "tiny.py"))
  print(f"report: {study.run(config, args.workdir)}")
  return 0
